"""Smoke test of ``clv demo``'s steps at a tiny size."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from retail_clv.cli import app
from retail_clv.cli import demo as demo_module
from retail_clv.cli.demo import DEMO_FILE


def _run(tmp_path: Path, *extra: str) -> str:
    args = [
        "demo",
        "--customers",
        "150",
        "--months",
        "12",
        "--data-dir",
        str(tmp_path / "data" / "demo"),
        "--models-dir",
        str(tmp_path / "models"),
        "--out",
        str(tmp_path / "output" / "predictions.csv"),
        *extra,
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # rich wraps long lines at the terminal width


def test_demo_runs_every_step(tmp_path: Path) -> None:
    output = _run(tmp_path)
    raw = tmp_path / "data" / "demo" / DEMO_FILE
    assert raw.exists() and Path(f"{raw}.truth.parquet").exists()
    assert "Demo steps" in output
    assert (tmp_path / "data" / "demo.db").exists()
    assert "Cleaning report" in output and "(every row accounted for)" in output
    assert "held-out window" in output
    assert "Oracle (true parameters)" in output
    assert "Model − baseline, 90% interval (customers resampled):" in output
    assert "Model 2 − run-rate: R² " in output
    assert "Products baselines: mean (mae " in output and "; last window (mae " in output
    predictions = pl.read_csv(tmp_path / "output" / "predictions.csv")
    assert predictions.columns == [
        "customer_id",
        "predicted_spend_30d_model1",
        "predicted_spend_30d_model2",
        "predicted_products_30d",
        "r2_model1",
        "r2_model2",
    ]
    assert predictions.height > 0
    assert (predictions["predicted_spend_30d_model2"] >= 0).all()
    assert "Top 10 customers" in output and "clv serve --db" in output


def test_demo_refuses_an_unknown_budget(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--budget", "huge", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "use quick or default" in result.output


def test_rerun_starts_from_a_fresh_demo_store(tmp_path: Path, monkeypatch) -> None:
    # a fresh demo store each run, so the same lines are loaded again (not seen as duplicates);
    # this is about the ingest step, so training and scoring are replaced by recorders here
    calls: list[str] = []
    monkeypatch.setattr(demo_module, "_train", lambda *a, **k: calls.append("train"))
    monkeypatch.setattr(demo_module, "_predict", lambda *a, **k: calls.append("predict"))
    pattern = r"rows read ([\d,]+) = loaded ([\d,]+) \+ rejected ([\d,]+) \+ duplicates ([\d,]+)"
    first = re.search(pattern, _run(tmp_path))
    again = re.search(pattern, _run(tmp_path))
    assert first is not None and again is not None
    assert first.groups() == again.groups()
    assert int(first.group(2).replace(",", "")) > 0
    assert calls == ["train", "predict", "train", "predict"]


def test_demo_refuses_a_history_too_short_to_train_before_generating(tmp_path: Path) -> None:
    data_dir = tmp_path / "data" / "demo"
    args = ["demo", "--months", "6", "--customers", "50", "--data-dir", str(data_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    output = " ".join(result.output.replace("│", " ").split())
    assert "6 months leave 152 days before the 30-day held-out window" in output
    assert "the quick budget needs 174: use --months 7 or more" in output
    assert not data_dir.exists()  # nothing generated
    result = CliRunner().invoke(app, [*args[:2], "12", *args[3:], "--budget", "default"])
    assert "use --months 13 or more" in " ".join(result.output.replace("│", " ").split())


def test_the_months_checks_count_from_the_first_open_day_and_the_first_sale() -> None:
    import datetime as dt

    import pytest
    import typer

    from retail_clv.errors import NotEnoughDataError

    # the realistic shop is closed from 23 December to 3 January; the bgnbd one never closes
    demo_module._check_months(7, dt.date(2010, 12, 23), "quick", "bgnbd")  # 182 days >= 174
    demo_module._check_months(7, dt.date(2009, 12, 29), "quick", "realistic")  # 176 >= 174
    with pytest.raises(typer.BadParameter) as caught:
        demo_module._check_months(7, dt.date(2010, 12, 23), "quick", "realistic")
    said = re.search(r"leave (\d+) days .* needs (\d+): use --months (\d+)", str(caught.value))
    assert said is not None and int(said[1]) < int(said[2]) and said[3] == "8"
    # a small shop whose first sale came late is refused after ingesting, before training
    with pytest.raises(NotEnoughDataError, match=r"first sale came on 2010-01-12: 7 months leave"):
        demo_module._check_first_sale(7, dt.date(2009, 12, 30), dt.date(2010, 1, 12), "quick")
    demo_module._check_first_sale(7, dt.date(2009, 12, 30), dt.date(2010, 1, 4), "quick")


def test_the_demo_refuses_to_train_a_generated_shop_whose_first_sale_came_too_late(
    tmp_path: Path,
) -> None:
    args = ["demo", "--customers", "10", "--months", "7", "--start", "2009-12-30"]
    args += ["--data-dir", str(tmp_path / "d"), "--models-dir", str(tmp_path / "m")]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "p.csv")])
    # (run_app prints it as one "Error:" line; the runner hands the exception back)
    from retail_clv.errors import NotEnoughDataError

    assert isinstance(result.exception, NotEnoughDataError)
    said = str(result.exception)
    assert "the generated shop's first sale came on 2010-01-12: 7 months leave 169 days" in said
    assert "use --months 8 or more (or more --customers, whose first sales come sooner)" in said
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())  # no model run
