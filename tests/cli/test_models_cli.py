"""``clv train`` / ``clv predict`` / ``clv models`` end to end on a tiny store."""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from retail_clv.cli.base import run_app
from retail_clv.config import get_settings

CSV_HEADER = [
    "customer_id",
    "predicted_spend_30d_model1",
    "predicted_spend_30d_model2",
    "predicted_products_30d",
    "r2_model1",
    "r2_model2",
]


def write_tiny_retail_csv(
    path: Path,
    n_customers: int = 120,
    start: dt.date = dt.date(2010, 12, 1),
    days: int = 374,
    seed: int = 0,
) -> Path:
    """Write a small Online Retail II look-alike: repeat buyers of different intensity."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(1.2, 1 / 40, n_customers)  # orders per day
    n_orders = rng.poisson(rate * days) + 1
    customer = np.repeat(np.arange(n_customers), n_orders)
    day = rng.integers(0, days, customer.size)
    day[0], day[-1] = 0, days - 1  # the data spans exactly `days` days
    lines = rng.integers(1, 5, customer.size)
    order = np.repeat(np.arange(customer.size), lines)
    n = order.size
    ids = np.array([f"{13000 + c}" for c in range(n_customers)], dtype=object)
    ids[0] = "=HYPERLINK(1)"  # formula-looking id: must come out neutralised in the CSV
    stamp = np.datetime64(start) + day[order].astype("timedelta64[D]")
    stamp = stamp.astype("datetime64[m]") + rng.integers(480, 1080, n).astype("timedelta64[m]")
    stamp = stamp.astype("datetime64[ms]")
    frame = pl.DataFrame(
        {
            "Invoice": (500000 + order).astype(str),
            "StockCode": (20000 + rng.integers(0, 40, n)).astype(str),
            "Description": ["GIFT ITEM"] * n,
            "Quantity": rng.integers(1, 13, n),
            "InvoiceDate": pl.Series(stamp).dt.strftime("%Y-%m-%d %H:%M:%S"),
            "Price": np.round(rng.uniform(0.5, 9.0, n), 2),
            "Customer ID": ids[customer[order]],
            "Country": np.where(customer[order] % 7 == 0, "France", "United Kingdom"),
        }
    )
    frame.write_csv(path)
    return path


def flat(text: str) -> str:
    """Undo rich's line wrapping."""
    return " ".join(text.split())


def ingest(path: Path) -> None:
    from retail_clv.ingest.pipeline import ingest_files
    from retail_clv.store.db import get_engine

    engine = get_engine()
    ingest_files([path], engine, progress=False)
    engine.dispose()


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One BLAS/OpenMP thread: on a shared, loaded 2-core machine OpenMP oversubscription made
    the quick training of this tiny store ~15x slower (measured 88 s vs 5 s wall)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny store and one quick-budget run shared by the end-to-end tests."""
    root = tmp_path_factory.mktemp("clv")
    env = {
        "CLV_DATABASE_URL": f"sqlite:///{root / 'clv.db'}",
        "CLV_MODELS_DIR": str(root / "models"),
        "CLV_OUTPUT_DIR": str(root / "output"),
        "CLV_N_JOBS": "1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        ingest(write_tiny_retail_csv(root / "tiny.csv"))
        code = run_app(["train", "--budget", "quick"])
        assert code == 0
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
    return {"root": root, **{k: Path(v) if k != "CLV_DATABASE_URL" else v for k, v in env.items()}}


@pytest.fixture
def use_trained(trained, monkeypatch) -> dict:
    for key in ("CLV_DATABASE_URL", "CLV_MODELS_DIR", "CLV_OUTPUT_DIR"):
        monkeypatch.setenv(key, str(trained[key]))
    get_settings.cache_clear()
    return trained


# ----------------------------------------------------------------------------- errors


def test_train_on_empty_store_says_ingest_first(capsys) -> None:
    from retail_clv.store.db import get_engine

    get_engine().dispose()
    assert run_app(["train", "--budget", "quick"]) == 1
    err = flat(capsys.readouterr().err)
    assert "holds no purchases: ingest data first: clv ingest FILE" in err
    assert "Traceback" not in err


def test_a_mistyped_store_path_is_refused_not_created(tmp_path: Path, capsys) -> None:
    typo = tmp_path / "dat" / "retial.db"
    assert run_app(["train", "--budget", "quick", "--db", f"sqlite:///{typo}"]) == 1
    err = flat(capsys.readouterr().err)
    assert f"there is no store at {typo}" in err and "ingest data first" in err
    assert not typo.parent.exists()


@pytest.mark.parametrize(
    ("days", "reason"),
    [
        (40, "about 6.7 months of data in all, with the held-out window), and 2010-12-10 has 9"),
        (100, "about 6.7 months of data in all, with the held-out window), and 2011-02-08 has 69"),
    ],
)
def test_train_on_too_short_history_is_refused(tmp_path: Path, capsys, days, reason) -> None:
    ingest(write_tiny_retail_csv(tmp_path / "short.csv", n_customers=20, days=days))
    assert run_app(["train", "--budget", "quick"]) == 1
    err = flat(capsys.readouterr().err)
    assert reason in err
    assert "needs 174 days of purchases before the as-of date" in err
    assert "; add history: clv ingest FILE" in err
    assert "Traceback" not in err


def test_train_as_of_after_the_data_is_refused(tmp_path: Path, capsys) -> None:
    ingest(write_tiny_retail_csv(tmp_path / "shop.csv", n_customers=20, days=200))
    assert run_app(["train", "--budget", "quick", "--as-of", "2012-06-01"]) == 1
    err = flat(capsys.readouterr().err)
    assert "--as-of 2012-06-01 is more than a day after the last purchase in the store" in err
    assert "(2011-06-18)" in err
    assert "use an --as-of on or before 2011-06-19 (the day after the last purchase" in err
    assert "the newest training windows would run past the data, counting the days after it" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--as-of", "2011-02-30"], "'2011-02-30' is not a calendar date: day is out of"),
        (["predict", "--as-of", "9/11/2011"], "'9/11/2011' is not a date written YYYY-MM-DD"),
        (["backtest", "--cutoff", "2011-13-01", "--json", "m.json"], "month must be in 1..12"),
        (["generate", "--start", "20091201"], "'20091201' is not a date written YYYY-MM-DD"),
    ],
)
def test_a_date_option_says_what_is_wrong_with_the_date(argv, message, capsys) -> None:
    assert run_app(argv) == 2  # Click's usage error, before any work
    err = "".join(capsys.readouterr().err.split()).replace("│", "")
    assert "".join(message.split()) in err
    assert "doesnotmatchtheformats" not in err and "Traceback" not in err


def test_predict_out_to_a_folder_is_refused_before_scoring(use_trained, tmp_path, capsys) -> None:
    assert run_app(["predict", "--out", str(tmp_path)]) == 1
    err = flat(capsys.readouterr().err)
    assert f"--out {tmp_path} is a folder; give a file path" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_predict_as_of_after_the_data_warns(use_trained, tmp_path, capsys) -> None:
    out = tmp_path / "later.csv"
    assert run_app(["predict", "--as-of", "2013-01-01", "--out", str(out)]) == 0
    text = flat(capsys.readouterr().out)
    # the tiny store's last purchase is 2011-12-09
    assert "Warning: --as-of 2013-01-01 is 388 days after the day after the last purchase" in text
    assert out.is_file()


def test_predict_as_of_before_the_runs_as_of_warns(use_trained, tmp_path, capsys) -> None:
    assert run_app(["predict", "--out", str(tmp_path / "now.csv")]) == 0
    assert "fitted values" not in flat(capsys.readouterr().out)
    assert run_app(["predict", "--as-of", "2011-03-01", "--out", str(tmp_path / "old.csv")]) == 0
    text = flat(capsys.readouterr().out)
    assert "Warning: --as-of 2011-03-01 is before the as-of date of model run" in text
    assert "fitted values, not a forecast" in text


def test_predict_before_any_purchase_is_one_error_without_warnings(use_trained, capsys) -> None:
    assert run_app(["predict", "--as-of", "2009-01-01"]) == 1
    captured = capsys.readouterr()
    assert "no customer has a purchase before 2009-01-01" in flat(captured.err)
    assert "Warning" not in captured.out + captured.err


def test_a_mistyped_last_date_is_pointed_out_by_ingest_and_predict(
    use_trained, tmp_path, monkeypatch, capsys
) -> None:
    shop = write_tiny_retail_csv(tmp_path / "typo.csv", n_customers=15, seed=4)
    frame = pl.read_csv(shop)
    typo = frame.tail(1).with_columns(pl.lit("2012-12-20 10:00:00").alias("InvoiceDate"))
    pl.concat([frame, typo]).write_csv(shop)  # the data ends on 2011-12-09
    monkeypatch.setenv("CLV_DATABASE_URL", f"sqlite:///{tmp_path / 'typo.db'}")
    get_settings.cache_clear()
    assert run_app(["ingest", str(shop)]) == 0
    said = flat(capsys.readouterr().out)
    expected = "the last purchase day, 2012-12-20 (1 line), is 377 days away from any other"
    assert expected in said and "(2011-12-09): a mistyped date?" in said
    # scoring as of the day after it would treat every customer as idle for a year
    assert run_app(["predict", "--out", str(tmp_path / "p.csv")]) == 1
    err = flat(capsys.readouterr().err)
    assert "Error: the last purchase day, 2012-12-20 (1 line), stands 377 days after any" in err
    assert (
        "Scored as of the day after it, 2012-12-21, every customer but that day's buyers looks "
        "idle since 2011-12-09" in err
    )
    assert "or pass --as-of 2011-12-10 to score as of the day after the other purchases" in err
    assert not (tmp_path / "p.csv").exists()
    assert run_app(["predict", "--as-of", "2011-12-10", "--out", str(tmp_path / "q.csv")]) == 0
    assert "a mistyped date?" not in flat(capsys.readouterr().out)  # an explicit date: theirs
    # training on the default date would move the held-out window into the empty year
    assert run_app(["train", "--budget", "quick"]) == 1
    err = flat(capsys.readouterr().err)
    assert "Error: the last purchase day, 2012-12-20 (1 line), stands 377 days after any" in err
    assert "Fix it (clv undo-ingest on the run that holds it, see clv ingest-runs, then" in err
    suggested = "or pass an --as-of to train on the purchases before it anyway: 2011-11-09 holds"
    assert suggested in err
    assert "Traceback" not in err


def test_predict_says_when_the_model_was_trained_on_another_store(
    use_trained, tmp_path, monkeypatch, capsys
) -> None:
    assert run_app(["predict", "--out", str(tmp_path / "same.csv")]) == 0
    assert "was trained on the store" not in flat(capsys.readouterr().out)
    other = tmp_path / "other.db"
    monkeypatch.setenv("CLV_DATABASE_URL", f"sqlite:///{other}")
    get_settings.cache_clear()
    ingest(write_tiny_retail_csv(tmp_path / "other.csv", n_customers=15, seed=3))
    assert run_app(["predict", "--out", str(tmp_path / "other.csv.out")]) == 0
    out = flat(capsys.readouterr().out)
    assert f"was trained on the store sqlite:///{use_trained['root'] / 'clv.db'}" in out
    assert f"it scores sqlite:///{other} here" in out
    # the run never saw the other store's later purchases: no fitted-values warning
    assert run_app(["predict", "--as-of", "2011-03-01", "--out", str(tmp_path / "o.csv")]) == 0
    assert "fitted values" not in flat(capsys.readouterr().out)


def test_predict_without_model_says_train_first(capsys) -> None:
    assert run_app(["predict"]) == 1
    assert "run `clv train` first" in flat(capsys.readouterr().err)


def test_predict_with_odd_run_id_is_refused(use_trained, capsys) -> None:
    assert run_app(["predict", "--run", "../../etc"]) == 1
    assert "invalid model run id" in flat(capsys.readouterr().err)


# ------------------------------------------------------------------------ end to end


def test_train_wrote_a_verified_run_with_card(use_trained) -> None:
    from retail_clv.models.registry import list_runs, load_run

    models_dir = use_trained["CLV_MODELS_DIR"]
    bundle = load_run(models_dir)
    assert (models_dir / "latest").resolve() == bundle.path
    # default as-of: last purchase date minus the horizon
    assert bundle.metadata["as_of"] == "2011-11-09"
    assert bundle.metadata["config"]["budget"] == "quick"
    # CLV_N_JOBS reached the learners and is recorded with the run
    assert bundle.metadata["config"]["n_jobs"] == 1
    stack = bundle.model2.regressor_
    assert stack.named_estimators_["rf"].named_steps["model"].n_jobs == 1
    assert stack.named_estimators_["xgb"].regressor.n_jobs == 1
    assert bundle.metadata["data_fingerprint"]["n_customers"] == 120
    card = (bundle.path / "model_card.md").read_text()
    assert card.startswith("# Model card")
    # the held-out comparison with each baseline comes with its bootstrap interval
    assert set(bundle.metadata["metrics"]["vs_baselines"]) == {"model1", "model2"}
    assert "| Model 2 − run-rate | " in card
    assert [r["active"] for r in list_runs(models_dir)] == [True]


def test_predict_writes_csv_table_and_prints_top_customers(use_trained, capsys) -> None:
    from retail_clv.store.db import get_engine
    from retail_clv.store.predictions import read_predictions

    out = use_trained["root"] / "out" / "p.csv"
    assert run_app(["predict", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Top 10 customers" in printed
    assert "Scored 120 customers as of 2011-12-10" in flat(printed)

    with out.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == CSV_HEADER
    assert len(rows) == 121
    ids = {row[0] for row in rows[1:]}
    assert "'=HYPERLINK(1)" in ids and "=HYPERLINK(1)" not in ids
    values = np.array([[float(v) for v in row[1:4]] for row in rows[1:]])
    assert (values >= 0).all()
    r2 = {(row[4], row[5]) for row in rows[1:]}
    assert len(r2) == 1  # the run's held-out R², the same on every row

    engine = get_engine()
    stored = read_predictions(engine)
    engine.dispose()
    assert stored.height == 120
    assert stored["as_of"].unique().to_list() == [dt.date(2011, 12, 10)]
    assert stored["horizon_days"].unique().to_list() == [30]
    # the raw id is stored; only the CSV is neutralised
    assert "=HYPERLINK(1)" in stored["customer_id"].to_list()
    csv_frame = pl.read_csv(out, schema_overrides={"customer_id": pl.String})
    # the CSV rounds to cents for its readers; the table keeps full precision
    by_id = stored.with_columns(
        pl.when(pl.col("customer_id").str.starts_with("="))
        .then("'" + pl.col("customer_id"))
        .otherwise(pl.col("customer_id"))
        .alias("customer_id")
    ).join(csv_frame, on="customer_id", suffix="_csv")
    assert by_id.height == 120
    for column in ("predicted_spend_30d_model2", "predicted_products_30d"):
        gap = (by_id[column] - by_id[f"{column}_csv"]).abs().max()
        assert gap <= 0.005 + 1e-9
        assert (by_id[f"{column}_csv"] * 100).round(6).to_list() == (
            (by_id[f"{column}_csv"] * 100).round(0).to_list()
        )


def test_predict_as_of_earlier_date_replaces_the_table(use_trained) -> None:
    from retail_clv.store.db import get_engine
    from retail_clv.store.predictions import read_predictions

    out = use_trained["root"] / "p2.csv"
    assert run_app(["predict", "--as-of", "2011-06-01", "--out", str(out)]) == 0
    csv_ids = pl.read_csv(out, schema_overrides={"customer_id": pl.String})["customer_id"]
    assert 0 < csv_ids.len() < 120  # customers first seen after 2011-06-01 are not scored
    engine = get_engine()
    stored = read_predictions(engine)
    engine.dispose()
    assert sorted(stored["customer_id"].to_list()) == sorted(
        c[1:] if c.startswith("'") else c for c in csv_ids.to_list()
    )
    assert stored["as_of"].unique().to_list() == [dt.date(2011, 6, 1)]


def test_predict_no_store_leaves_the_served_table_alone(use_trained, capsys) -> None:
    from retail_clv.store.db import get_engine
    from retail_clv.store.predictions import read_predictions

    root = use_trained["root"]
    assert run_app(["predict", "--out", str(root / "served.csv")]) == 0
    assert "the predictions table, which now holds exactly these scores" in flat(
        capsys.readouterr().out
    )
    engine = get_engine()
    before = read_predictions(engine)
    out = root / "explore.csv"
    assert run_app(["predict", "--as-of", "2011-06-01", "--no-store", "--out", str(out)]) == 0
    assert "the predictions table was left as it was" in flat(capsys.readouterr().out)
    assert out.is_file()
    assert read_predictions(engine).equals(before)
    engine.dispose()
    served = (root / "served.csv").read_bytes()
    assert run_app(["predict", "--as-of", "2011-05-01", "--no-store"]) == 0
    default_dir = use_trained["CLV_OUTPUT_DIR"]
    assert (default_dir / "predictions_2011-05-01.csv").is_file()
    assert "predictions_2011-05-01.csv" in flat(capsys.readouterr().out)
    assert (root / "served.csv").read_bytes() == served


def test_models_lists_runs(use_trained, capsys) -> None:
    assert run_app(["models"]) == 0
    out = flat(capsys.readouterr().out)
    latest = os.readlink(use_trained["CLV_MODELS_DIR"] / "latest")
    assert latest in out
    assert "* the run models/latest points at: clv predict and the API use it" in out
    # the training store of each run, by the name of its file
    assert Path(trained_db_name(use_trained)).name in out


def trained_db_name(trained: dict) -> str:
    from sqlalchemy.engine import make_url

    return str(make_url(str(trained["CLV_DATABASE_URL"])).database)


def test_a_bad_thread_count_is_one_clear_error(monkeypatch, capsys) -> None:
    monkeypatch.setenv("CLV_N_JOBS", "0")
    get_settings.cache_clear()
    try:
        assert run_app(["train", "--budget", "quick"]) == 1
    finally:
        get_settings.cache_clear()
    err = flat(capsys.readouterr().err)
    assert "invalid setting CLV_N_JOBS='0': Input should be greater than or equal to 1" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--max-train-cutoffs", "3"], None, "--max-train-cutoffs 3"),
        ([], "2", "CLV_MAX_TRAIN_CUTOFFS 2"),
    ],
)
@pytest.mark.parametrize("command", [["train"], ["backtest", "--cutoff", "2011-01-01"]])
def test_a_cap_on_training_cutoffs_too_few_for_the_budget_is_one_clear_error(
    tmp_path, monkeypatch, capsys, command, args, env, named
) -> None:
    missing = tmp_path / "missing.db"  # refused before the store is even opened
    monkeypatch.setenv("CLV_DATABASE_URL", f"sqlite:///{missing}")
    if env is not None:
        monkeypatch.setenv("CLV_MAX_TRAIN_CUTOFFS", env)
    get_settings.cache_clear()
    extra = ["--json", str(tmp_path / "b.json")] if command[0] == "backtest" else []
    try:
        assert run_app([*command, *extra, "--budget", "quick", *args]) == 1
    finally:
        get_settings.cache_clear()
    err = flat(capsys.readouterr().err)
    assert f"{named} is too few for the quick budget with a horizon of 30 days:" in err
    assert "need at least 4 training cutoffs" in err and "Traceback" not in err
    assert not missing.exists()


@pytest.mark.parametrize(("value", "cap"), [("", None), ("  ", None), ("13", 13)])
def test_a_blank_cap_setting_means_all_history(monkeypatch, value, cap) -> None:
    from retail_clv.config import Settings

    monkeypatch.setenv("CLV_MAX_TRAIN_CUTOFFS", value)  # e.g. an uncommented example line
    assert Settings().max_train_cutoffs == cap


def test_train_passes_its_cap_on_training_cutoffs_on(use_trained, monkeypatch) -> None:
    from retail_clv.models import training

    seen: dict[str, object] = {}

    class Stop(Exception):
        pass

    def capture(*args, **kwargs):
        seen["max_train_cutoffs"] = kwargs["max_train_cutoffs"]
        raise Stop

    monkeypatch.setattr(training, "train", capture)
    with pytest.raises(Stop):
        run_app(["train", "--budget", "quick", "--max-train-cutoffs", "6"])
    assert seen == {"max_train_cutoffs": 6}
    monkeypatch.setenv("CLV_MAX_TRAIN_CUTOFFS", "5")
    get_settings.cache_clear()
    try:
        with pytest.raises(Stop):
            run_app(["train", "--budget", "quick"])
    finally:
        get_settings.cache_clear()
    assert seen == {"max_train_cutoffs": 5}


def test_a_store_is_the_same_whatever_the_password_in_its_url() -> None:
    from retail_clv.models.scoring import store_key as _store_key

    recorded = "postgresql+psycopg://clv:***@db.internal:5432/retail"  # as a run records it
    assert _store_key(recorded) == _store_key(
        "postgresql+psycopg://clv:s3cret@db.internal:5432/retail"
    )
    assert _store_key(recorded) != _store_key(
        "postgresql+psycopg://clv:s3cret@db.internal:5432/other"
    )
    assert _store_key(recorded) != _store_key(
        "postgresql+psycopg://bob:s3cret@db.internal:5432/retail"
    )
