"""The dashboard is a client of the API, not a second copy of the logic (GUIDE item 8)."""

from __future__ import annotations

import ast
from pathlib import Path

import retail_clv.dashboard

DASHBOARD = Path(retail_clv.dashboard.__file__).resolve().parent
CORE = ("ingest", "store", "features", "models", "synth", "api")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_dashboard_imports_no_core_layer() -> None:
    files = sorted(DASHBOARD.rglob("*.py"))
    assert len(files) >= 8
    offenders = {
        f"{path.relative_to(DASHBOARD)}: {name}"
        for path in files
        for name in imported_modules(path)
        if name.startswith(tuple(f"retail_clv.{layer}" for layer in CORE))
        or name in {"sklearn", "xgboost", "lifetimes", "duckdb", "sqlalchemy"}
    }
    assert not offenders, offenders


def test_the_check_would_catch_a_core_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from retail_clv.models.scoring import score\nimport sklearn\n")
    assert imported_modules(bad) == {"retail_clv.models.scoring", "sklearn"}
