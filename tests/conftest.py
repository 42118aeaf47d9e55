"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from retail_clv.config import get_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Give every test its own store and models folder, never the user's."""
    monkeypatch.setenv("CLV_DATABASE_URL", f"sqlite:///{tmp_path / 'clv.db'}")
    monkeypatch.setenv("CLV_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CLV_OUTPUT_DIR", str(tmp_path / "output"))
    monkeypatch.delenv("CLV_API_KEY", raising=False)
    # `clv dashboard` replaces its process with Streamlit: in a test that would be pytest's
    monkeypatch.setattr(os, "execve", _no_exec)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _no_exec(*args: object) -> None:
    raise AssertionError(f"a test tried to replace the test process: os.execve{args[:2]}")


@pytest.fixture(scope="session")
def online_retail_ii() -> Path:
    """Path of the full UCI Online Retail II CSV in ../shared/data (skipped when absent)."""
    path = SHARED_DATA / "online_retail_II.csv.gz"
    if not path.exists():
        pytest.skip(f"public data set not found at {path}")
    return path
