from __future__ import annotations

import polars as pl
import pytest

from retail_clv.synth import GenerateReport, generate

from .helpers import START, read_raw


@pytest.fixture(scope="session")
def realistic(tmp_path_factory: pytest.TempPathFactory) -> GenerateReport:
    out = tmp_path_factory.mktemp("synth") / "realistic.csv"
    return generate(1500, START, 24, 11, out)


@pytest.fixture(scope="session")
def bgnbd(tmp_path_factory: pytest.TempPathFactory) -> GenerateReport:
    out = tmp_path_factory.mktemp("synth") / "bgnbd.csv"
    return generate(4000, START, 24, 5, out, process="bgnbd")


@pytest.fixture(scope="session")
def realistic_raw(realistic: GenerateReport) -> pl.DataFrame:
    return read_raw(realistic.path)
