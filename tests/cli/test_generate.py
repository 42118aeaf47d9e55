from __future__ import annotations

from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from retail_clv.cli import app
from retail_clv.cli.generate import infer_format
from retail_clv.synth.generator import COLUMNS


def test_generate_writes_the_file_and_its_truth(tmp_path: Path) -> None:
    out = tmp_path / "shop.csv"
    args = ["generate", "--customers", "80", "--months", "6", "--seed", "3", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "rows written" in result.output
    # dirt is listed as kinds that can overlap, not as parts of the clean rows
    flat = " ".join(result.output.replace("│", " ").split())
    assert flat.index("clean purchase rows") < flat.index("rows of each kind of dirt")
    assert flat.index("rows of each kind of dirt") < flat.index("missing customer id")
    assert out.read_text(encoding="utf-8").splitlines()[0] == ",".join(COLUMNS)
    truth = pl.read_parquet(tmp_path / "shop.csv.truth.parquet")
    assert truth.height == 80
    assert truth["cutoff"][0].isoformat() == "2010-05-02"  # 30 days before 2010-06-01


def test_generate_format_follows_the_file_name(tmp_path: Path) -> None:
    out = tmp_path / "shop.parquet"
    result = CliRunner().invoke(
        app, ["generate", "--customers", "20", "--months", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out).columns == COLUMNS
    assert infer_format(Path("a.csv.gz")) == "csv.gz"
    assert infer_format(Path("a.xlsx")) == "xlsx"
    assert infer_format(Path("a.txt")) == "csv"


def test_generate_bad_argument_is_a_usage_error(tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--customers",
            "5",
            "--months",
            "2",
            "--truth-cutoff",
            "2010-01-15",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2
    assert "30 days before the end" in result.output
    result = CliRunner().invoke(app, ["generate", "--format", "json", "--out", str(out)])
    assert result.exit_code == 2
    assert "unknown format 'json'" in result.output
