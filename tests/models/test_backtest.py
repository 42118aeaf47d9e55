import datetime as dt
import json
import math
import re

import polars as pl
import pytest

import retail_clv.cli  # noqa: F401  (registers every command)
from retail_clv.cli.base import run_app
from retail_clv.config import get_settings
from retail_clv.errors import NotEnoughDataError
from retail_clv.models import backtest as BT
from retail_clv.models.training import history_needed
from retail_clv.store.db import get_engine
from tests.models._sample import synthetic_log

BLOCK = {"r2": 0.5, "mae": 1.0, "rmse": 2.0, "spearman": 0.4, "gini": 0.7, "top10_capture": 0.6}
FAKE = {
    "cutoff": "2011-03-01",
    "horizon_days": 30,
    "n_customers": 10,
    "models": {"model1": BLOCK, "model2": {**BLOCK, "r2": math.nan}, "products": {"mae": 1.0}},
    "baselines": {
        "mean": BLOCK,
        "run_rate": BLOCK,
        "bgnbd_gg": {"failed": True, "reason": "ConvergenceError: no"},
    },
    "vs_baselines": {
        "model1": {
            "run_rate": {
                "r2": {"delta": 0.05, "low": -0.012, "high": 0.1, "share_above_zero": 0.9},
                "gini": {"delta": 0.02, "low": 0.004, "high": 0.03, "share_above_zero": 0.99},
            }
        },
    },
}


def test_backtest_refuses_a_window_the_data_does_not_cover():
    purchases, cancellations = synthetic_log(n_customers=20, months=12)
    last = purchases["invoice_date"].max().date()
    with pytest.raises(NotEnoughDataError, match="does not cover the test window"):
        BT.backtest(purchases, cancellations, last - dt.timedelta(days=10), 30, "quick")


def test_backtest_refuses_a_cutoff_before_the_data():
    purchases, cancellations = synthetic_log(n_customers=20, months=12)
    first = purchases["invoice_date"].min().date()
    with pytest.raises(NotEnoughDataError, match=f"the data starts on {first}: .* later --cutoff"):
        BT.backtest(purchases, cancellations, first - dt.timedelta(days=30), 30, "quick")


def test_backtest_passes_its_cap_on_training_cutoffs_to_the_training():
    from retail_clv.errors import SettingError

    purchases, cancellations = synthetic_log(n_customers=20, months=12)
    cutoff = purchases["invoice_date"].max().date() - dt.timedelta(days=40)
    with pytest.raises(SettingError, match="max_train_cutoffs 3 is too few for the quick"):
        BT.backtest(purchases, cancellations, cutoff, 30, "quick", max_train_cutoffs=3)


def test_backtest_names_the_cutoff_when_history_is_too_short():
    purchases, cancellations = synthetic_log(n_customers=20, months=12)
    cutoff = purchases["invoice_date"].min().date() + dt.timedelta(days=100)
    with pytest.raises(NotEnoughDataError) as caught:
        BT.backtest(purchases, cancellations, cutoff, 1, "quick")
    message = str(caught.value)
    assert message.startswith(f"too little history before the cutoff {cutoff}:")
    first = purchases["invoice_date"].min().date()
    last = purchases["invoice_date"].max().date()
    assert "the quick budget with a 1-day horizon trains on 145 days of purchases" in message
    allowed = f"(this store allows {first + dt.timedelta(days=145)} to {last} with the quick"
    assert allowed in message
    assert "as-of" not in message
    # the day before the range is refused
    with pytest.raises(NotEnoughDataError, match="too little history"):
        BT.backtest(purchases, cancellations, first + dt.timedelta(days=144), 1, "quick")


def test_backtest_after_the_data_names_the_cutoffs_the_store_allows():
    purchases, cancellations = synthetic_log(n_customers=20, months=12)
    last = purchases["invoice_date"].max().date()
    with pytest.raises(NotEnoughDataError) as caught:
        BT.backtest(purchases, cancellations, last, 30, "quick")
    assert "choose an earlier --cutoff (this store allows " in str(caught.value)
    assert f" to {last - dt.timedelta(days=29)} with the quick budget)" in str(caught.value)

    def ending(days: int) -> pl.DataFrame:
        start = pl.col("invoice_date").min()
        return purchases.filter(pl.col("invoice_date") < start + pl.duration(days=days))

    def refusal(frame: pl.DataFrame, budget: str) -> str:
        with pytest.raises(NotEnoughDataError) as caught:
            BT.backtest(frame, cancellations, last, 30, budget)
        return str(caught.value).split("(no cutoff fits this store with the ")[1]

    # three months: no budget and no horizon would do
    assert refusal(ending(90), "quick") == "quick budget and a 30-day horizon: add history)"
    assert refusal(ending(90), "default") == "default budget and a 30-day horizon: add history)"
    # about 200 days: a shorter horizon fits (the longest one is named); so does quick
    said = re.search(r"or use a --horizon of (\d+) days or less\)$", refusal(ending(200), "quick"))
    assert said is not None
    h, frame = int(said.group(1)), ending(200)
    first, end = frame["invoice_date"].min().date(), frame["invoice_date"].max().date()
    assert first + dt.timedelta(days=history_needed("quick", h)[1] + h - 1) <= end
    assert first + dt.timedelta(days=history_needed("quick", h + 1)[1] + h) > end
    # about 260 days: the quick budget fits where the default one does not
    assert "add history, or use --budget quick, or use a --horizon" in refusal(
        ending(260), "default"
    )


def test_summary_rows_flatten_models_and_failed_baselines():
    rows = BT.summary_rows(FAKE)
    assert [r["name"] for r in rows] == ["model1", "model2", "mean", "run_rate", "bgnbd_gg"]
    assert rows[-1]["failed"] == "ConvergenceError: no" and rows[-1]["r2"] is None
    assert rows[0]["kind"] == "model" and rows[2]["kind"] == "baseline"


def test_clean_makes_strict_json():
    out = BT._clean(FAKE)
    assert out["models"]["model2"]["r2"] is None
    json.dumps(out, allow_nan=False)


@pytest.mark.parametrize(
    ("env", "args", "horizon", "cap"),
    [
        ({}, [], 30, None),
        ({"CLV_HORIZON_DAYS": "7"}, [], 7, None),
        ({"CLV_HORIZON_DAYS": "7"}, ["--horizon", "14"], 14, None),
        ({"CLV_MAX_TRAIN_CUTOFFS": "13"}, [], 30, 13),
        # the option wins; 4 is exactly what the quick budget needs at 30 days
        ({"CLV_MAX_TRAIN_CUTOFFS": "13"}, ["--max-train-cutoffs", "4"], 30, 4),
    ],
)
def test_cli_backtest_writes_json_and_prints_table(
    monkeypatch, tmp_path, capsys, env, args, horizon, cap
):
    import retail_clv.store.queries as queries

    purchases, cancellations = synthetic_log(n_customers=20, months=12)
    monkeypatch.setattr(queries, "read_purchases", lambda engine: purchases)
    monkeypatch.setattr(queries, "read_cancellations", lambda engine: cancellations)
    seen = {}

    def fake_backtest(
        p, c, cutoff, horizon, budget, progress=None, n_jobs=None, max_train_cutoffs=None
    ):
        seen.update(cutoff=cutoff, horizon=horizon, budget=budget, rows=p.height, n_jobs=n_jobs)
        seen["max_train_cutoffs"] = max_train_cutoffs
        progress(0.5, "half")
        return BT._clean(FAKE)

    monkeypatch.setattr(BT, "backtest", fake_backtest)
    monkeypatch.setenv("CLV_N_JOBS", "3")
    for name, value in env.items():  # the horizon defaults to the setting, like clv train's
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_engine().dispose()  # the store exists (its rows are the patched frames above)
    out = tmp_path / "bt" / "metrics.json"
    code = run_app(
        ["backtest", "--cutoff", "2011-03-01", "--budget", "quick", "--json", str(out), *args]
    )
    assert code == 0
    assert seen == {
        "cutoff": dt.date(2011, 3, 1),
        "horizon": horizon,
        "budget": "quick",
        "rows": purchases.height,
        "n_jobs": 3,  # CLV_N_JOBS
        "max_train_cutoffs": cap,
    }
    data = json.loads(out.read_text())
    assert data["cutoff"] == "2011-03-01" and data["baselines"]["bgnbd_gg"]["failed"] is True
    printed = capsys.readouterr().out
    assert "model2" in printed and "failed" in printed
    assert "Model 1 − run-rate: R² +0.050 [-0.012, +0.100], Gini +0.020 [+0.004, +0.030]" in printed


def test_cli_backtest_on_an_empty_store_is_one_clear_error(tmp_path, capsys):
    get_engine().dispose()
    code = run_app(["backtest", "--cutoff", "2011-03-01", "--json", str(tmp_path / "m.json")])
    assert code == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "holds no purchases: ingest data first" in err and "Traceback" not in err


def test_cli_backtest_on_a_missing_store_creates_nothing(tmp_path, capsys):
    typo = tmp_path / "no" / "such.db"
    code = run_app(
        ["backtest", "--cutoff", "2011-03-01", "--db", f"sqlite:///{typo}", "--json", "m.json"]
    )
    assert code == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"there is no store at {typo}" in err and "ingest data first" in err
    assert not typo.parent.exists()
