from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from retail_clv.errors import ModelMismatchError, ModelNotFoundError
from retail_clv.models import registry
from retail_clv.models.registry import (
    data_fingerprint,
    list_runs,
    load_run,
    new_run_id,
    save_run,
)
from tests.models._toy import TOY_FEATURES, as_pandas, toy_features, toy_result

RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
FINGERPRINT = {"database_url": "sqlite:///x.db", "n_purchases": 3}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rewrite_checksums(run_dir: Path) -> None:
    """Recompute checksums after a deliberate metadata edit (to reach later checks)."""
    files = {p.name: _sha(p) for p in run_dir.iterdir() if p.name != "checksums.json"}
    (run_dir / "checksums.json").write_text(json.dumps({"algorithm": "sha256", "files": files}))


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One saved run per module (plots take ~1 s); tests get their own copy."""
    models_dir = tmp_path_factory.mktemp("template") / "models"
    save_run(toy_result(), models_dir, FINGERPRINT)
    return models_dir


@pytest.fixture
def saved(_template: Path, tmp_path: Path) -> tuple[Path, Path]:
    models_dir = tmp_path / "models"
    shutil.copytree(_template, models_dir, symlinks=True)
    return models_dir, models_dir / os.readlink(models_dir / "latest")


# ------------------------------------------------------------------------------------ save


def test_save_run_writes_every_artifact_and_checksums_cover_them(saved) -> None:
    models_dir, run_dir = saved
    assert RUN_ID.fullmatch(run_dir.name)
    names = {p.name for p in run_dir.iterdir()}
    expected = {
        "model1.joblib",
        "model2.joblib",
        "products.joblib",
        "metadata.json",
        "metrics.json",
        "holdout.parquet",
        "model_card.md",
        "checksums.json",
        "calibration.png",
        "gain_curve.png",
        "feature_importance.png",
        "model_vs_baseline.png",
    }
    assert names == expected
    checksums = json.loads((run_dir / "checksums.json").read_text())["files"]
    assert set(checksums) == expected - {"checksums.json"}
    assert all(checksums[name] == _sha(run_dir / name) for name in checksums)
    # no temporary directory or pointer left behind
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".tmp-")]


def test_metadata_records_run_data_and_environment(saved) -> None:
    _, run_dir = saved
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["run_id"] == run_dir.name
    assert meta["trained_at"].endswith("Z")
    assert meta["as_of"] == "2011-11-09"
    assert meta["horizon_days"] == 30
    assert meta["feature_names"] == TOY_FEATURES
    assert meta["metrics"]["models"]["model2"]["r2"] == 0.67
    # NaN is not valid JSON: it is stored as null
    assert meta["metrics"]["baselines"]["bgnbd_gg"]["r2"] is None
    assert meta["best_params"]["model2"] == {"rf__max_depth": 6}
    assert meta["cv_scores"]["model1"] == [0.5, 0.55]
    assert meta["config"]["budget"] == "quick"
    assert meta["data_fingerprint"] == FINGERPRINT
    for lib in (
        "python",
        "retail-clv",
        "numpy",
        "pandas",
        "polars",
        "scikit-learn",
        "xgboost",
        "joblib",
    ):
        assert meta["library_versions"][lib]
    assert set(meta["git"]) == {"commit", "dirty"}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["models"]["model1"]["r2"] == 0.61


def test_latest_points_at_newest_run_and_list_runs_is_newest_first(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    first = save_run(toy_result(seed=0), models_dir, FINGERPRINT)
    second = save_run(toy_result(seed=1), models_dir, FINGERPRINT)
    link = models_dir / "latest"
    assert link.is_symlink() and os.readlink(link) == second.name
    assert load_run(models_dir).run_id == second.name
    assert load_run(models_dir, first.name).run_id == first.name
    runs = list_runs(models_dir)
    expected_order = sorted([first.name, second.name], reverse=True)
    assert [r["run_id"] for r in runs] == expected_order
    assert {r["run_id"]: r["active"] for r in runs} == {first.name: False, second.name: True}
    assert runs[0]["r2_model2"] == 0.67 and runs[0]["horizon_days"] == 30


def test_a_deleted_latest_run_names_the_runs_left(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    first = save_run(toy_result(seed=0), models_dir, FINGERPRINT)
    second = save_run(toy_result(seed=1), models_dir, FINGERPRINT)
    shutil.rmtree(second)
    with pytest.raises(ModelNotFoundError) as caught:
        load_run(models_dir)
    message = str(caught.value)
    assert message.startswith(f"models/latest names the run {second.name}, which is not in")
    assert f"1 there, newest {first.name}" in message and "clv models" in message
    missing = "20991231T000000Z-abcdef"
    with pytest.raises(ModelNotFoundError, match="list the runs there with clv models"):
        load_run(models_dir, missing)


def test_latest_text_file_when_symlinks_are_unavailable(tmp_path: Path, monkeypatch) -> None:
    def no_symlink(*args, **kwargs):
        raise OSError("symlinks not supported")

    monkeypatch.setattr(registry.os, "symlink", no_symlink)
    models_dir = tmp_path / "models"
    run_dir = save_run(toy_result(), models_dir, FINGERPRINT)
    assert not (models_dir / "latest").exists()
    assert (models_dir / "LATEST").read_text().strip() == run_dir.name
    assert load_run(models_dir).run_id == run_dir.name
    assert list_runs(models_dir)[0]["active"] is True


def test_failed_save_leaves_no_run_and_keeps_latest(saved, monkeypatch) -> None:
    models_dir, run_dir = saved

    def broken_card(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("retail_clv.models.card.write_model_card", broken_card)
    with pytest.raises(RuntimeError, match="disk full"):
        save_run(toy_result(seed=3), models_dir, FINGERPRINT)
    assert [p.name for p in models_dir.iterdir() if RUN_ID.fullmatch(p.name)] == [run_dir.name]
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".tmp-")]
    assert load_run(models_dir).run_id == run_dir.name


def test_run_ids_are_sortable_by_time_and_unique() -> None:
    early = new_run_id(dt.datetime(2026, 11, 27, 15, 1, 2, tzinfo=dt.UTC))
    late = new_run_id(dt.datetime(2026, 11, 27, 15, 1, 3, tzinfo=dt.UTC))
    assert early.startswith("20261127T150102Z-") and RUN_ID.fullmatch(early)
    assert early < late
    same_second = {new_run_id(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) for _ in range(50)}
    assert len(same_second) > 45  # 24 random bits: collisions are (almost) impossible


# ------------------------------------------------------------------------------------ load


def test_round_trip_predictions_are_identical(saved) -> None:
    models_dir, _ = saved
    original = toy_result()
    bundle = load_run(models_dir)
    x = as_pandas(toy_features(seed=5))
    for name in ("model1", "model2", "products_model"):
        np.testing.assert_array_equal(
            getattr(bundle, name).predict(x), getattr(original, name).predict(x)
        )
    assert bundle.feature_names == TOY_FEATURES
    assert bundle.r2_model1 == 0.61 and bundle.r2_model2 == 0.67


def test_bundle_predict_matches_predict_frame_and_adds_holdout_r2(saved) -> None:
    from retail_clv.models import training

    models_dir, _ = saved
    original = toy_result()
    features = toy_features(seed=7)
    bundle = load_run(models_dir)
    got = bundle.predict(features)
    want = training.predict_frame(
        original.model1, original.model2, original.products_model, features, TOY_FEATURES
    )
    assert got.columns == [*want.columns, "r2_model1", "r2_model2"]
    assert got.drop("r2_model1", "r2_model2").equals(want)
    assert got["r2_model1"].unique().to_list() == [0.61]
    assert got["r2_model2"].unique().to_list() == [0.67]


def test_bundle_predict_refuses_features_missing_a_model_column(saved) -> None:
    models_dir, _ = saved
    bundle = load_run(models_dir)
    with pytest.raises(ModelMismatchError, match=r"lacks: monetary.*retrain"):
        bundle.predict(toy_features().drop("monetary"))


@pytest.mark.parametrize("name", ["model1.joblib", "products.joblib", "metadata.json"])
def test_tampered_file_is_refused_before_unpickling(saved, name, monkeypatch) -> None:
    models_dir, run_dir = saved
    path = run_dir / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # flip one bit
    path.write_bytes(bytes(data))
    loads = []
    monkeypatch.setattr("joblib.load", lambda *a, **k: loads.append(a))
    with pytest.raises(ModelMismatchError, match=f"checksum mismatch for {re.escape(name)}"):
        load_run(models_dir)
    assert loads == []  # nothing was unpickled


def test_missing_checksums_or_listed_file_is_refused(saved) -> None:
    models_dir, run_dir = saved
    (run_dir / "model2.joblib").unlink()
    with pytest.raises(ModelMismatchError, match="model2.joblib.*missing"):
        load_run(models_dir)
    (run_dir / "checksums.json").unlink()
    with pytest.raises(ModelMismatchError, match="has no checksums.json"):
        load_run(models_dir)


def test_recorded_library_version_mismatch_names_versions_and_says_retrain(saved) -> None:
    models_dir, run_dir = saved
    meta = json.loads((run_dir / "metadata.json").read_text())
    installed = meta["library_versions"]["scikit-learn"]
    meta["library_versions"]["scikit-learn"] = "0.24.2"
    (run_dir / "metadata.json").write_text(json.dumps(meta))
    _rewrite_checksums(run_dir)
    with pytest.raises(ModelMismatchError) as info:
        load_run(models_dir)
    message = str(info.value)
    assert f"scikit-learn 0.24.2 (installed: {installed})" in message
    assert "retrain with `clv train`" in message


def test_a_run_trained_on_other_feature_definitions_is_refused(saved) -> None:
    from retail_clv.features import FEATURE_VERSION

    models_dir, run_dir = saved
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["feature_version"] == FEATURE_VERSION
    del meta["feature_version"]  # a run saved before the version was recorded: version 1
    (run_dir / "metadata.json").write_text(json.dumps(meta))
    _rewrite_checksums(run_dir)
    with pytest.raises(ModelMismatchError, match="trained on features of version 1; this "):
        load_run(models_dir)


def test_installed_xgboost_minor_change_is_refused_patch_change_accepted(
    saved, monkeypatch
) -> None:
    models_dir, run_dir = saved
    recorded = json.loads((run_dir / "metadata.json").read_text())["library_versions"]
    major, minor, *_ = recorded["xgboost"].split(".")
    real = registry.library_versions

    def installed(xgb: str):
        return lambda: {**real(), "xgboost": xgb}

    monkeypatch.setattr(registry, "library_versions", installed(f"{major}.{minor}.99"))
    assert load_run(models_dir).run_id == run_dir.name
    monkeypatch.setattr(registry, "library_versions", installed(f"{major}.{int(minor) + 1}.0"))
    with pytest.raises(ModelMismatchError, match=rf"xgboost {re.escape(recorded['xgboost'])}"):
        load_run(models_dir)


def test_another_release_of_a_feature_library_loads_with_a_warning(
    saved, monkeypatch, caplog
) -> None:
    models_dir, run_dir = saved
    recorded = json.loads((run_dir / "metadata.json").read_text())["library_versions"]
    assert {"polars", "lifetimes", "scipy"} <= set(recorded)
    real = registry.library_versions
    monkeypatch.setattr(registry, "library_versions", lambda: {**real(), "lifetimes": "0.99.0"})
    with caplog.at_level("WARNING", logger="retail_clv.models.registry"):
        assert load_run(models_dir).run_id == run_dir.name  # not refused
    [warning] = [r.getMessage() for r in caplog.records if "features computed" in r.getMessage()]
    assert f"lifetimes {recorded['lifetimes']} (installed: 0.99.0)" in warning
    # the same releases, or a run saved before lifetimes was recorded: nothing to say
    caplog.clear()
    monkeypatch.setattr(registry, "library_versions", real)
    load_run(models_dir)
    meta = json.loads((run_dir / "metadata.json").read_text())
    del meta["library_versions"]["lifetimes"]
    (run_dir / "metadata.json").write_text(json.dumps(meta))
    _rewrite_checksums(run_dir)
    monkeypatch.setattr(registry, "library_versions", lambda: {**real(), "lifetimes": "0.99.0"})
    load_run(models_dir)
    assert not [r for r in caplog.records if "features computed" in r.getMessage()]


def test_model_pickled_by_other_code_is_a_mismatch(saved, monkeypatch) -> None:
    """A pickle naming an estimator class that existed at training time, renamed since."""
    import joblib

    import retail_clv.models as models_pkg

    models_dir, run_dir = saved
    gone = type("NoSuchEstimator", (), {"__module__": "retail_clv.models"})
    monkeypatch.setattr(models_pkg, "NoSuchEstimator", gone, raising=False)
    joblib.dump(gone(), run_dir / "products.joblib")
    monkeypatch.delattr(models_pkg, "NoSuchEstimator")
    _rewrite_checksums(run_dir)
    with pytest.raises(ModelMismatchError, match="cannot load products.joblib.*retrain"):
        load_run(models_dir)


def test_renamed_run_directory_is_refused(saved) -> None:
    models_dir, run_dir = saved
    other = models_dir / "20200101T000000Z-abcdef"
    run_dir.rename(other)
    with pytest.raises(ModelMismatchError, match="holds metadata of run"):
        load_run(models_dir, other.name)


@pytest.mark.parametrize(
    "run_id",
    ["..", "../models", "/etc", "20261127T150102Z-3fa9c1/../..", "latest/..", "x", "", "LATEST"],
)
def test_odd_run_ids_are_refused(saved, run_id) -> None:
    models_dir, _ = saved
    with pytest.raises(ModelNotFoundError, match="invalid model run id"):
        load_run(models_dir, run_id)


def test_run_directory_symlinked_outside_models_dir_is_refused(saved, tmp_path) -> None:
    models_dir, run_dir = saved
    outside = tmp_path / "elsewhere"
    run_dir.rename(outside)
    (models_dir / run_dir.name).symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelNotFoundError, match="not a directory inside"):
        load_run(models_dir, run_dir.name)


@pytest.mark.parametrize("make_dir", [False, True])
def test_no_model_says_run_clv_train_first(tmp_path: Path, make_dir: bool) -> None:
    models_dir = tmp_path / "models"
    if make_dir:
        models_dir.mkdir()
    with pytest.raises(ModelNotFoundError, match="run `clv train` first"):
        load_run(models_dir)
    assert list_runs(models_dir) == []


def test_unknown_run_id_is_not_found(saved) -> None:
    models_dir, _ = saved
    with pytest.raises(ModelNotFoundError, match="20200101T000000Z-abcdef not found"):
        load_run(models_dir, "20200101T000000Z-abcdef")


# ----------------------------------------------------------------------------- fingerprint


def _purchases() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": ["1", "1", "2"],
            "invoice": ["A", "A", "B"],
            "stock_code": ["X", "Y", "X"],
            "quantity": [1, 2, 3],
            "price": [1.5, 2.0, 1.5],
            "invoice_date": [
                dt.datetime(2011, 1, 2, 10),
                dt.datetime(2011, 1, 2, 10),
                dt.datetime(2011, 3, 4, 9),
            ],
        }
    )


def test_data_fingerprint_counts_dates_hides_password_and_ignores_row_order() -> None:
    purchases = _purchases()
    fp = data_fingerprint(purchases, "postgresql+psycopg://clv:s3cret@db:5432/clv")
    assert fp["database_url"] == "postgresql+psycopg://clv@db:5432/clv"
    assert "s3cret" not in json.dumps(fp)
    assert (fp["n_purchases"], fp["n_customers"]) == (3, 2)
    assert (fp["date_min"], fp["date_max"]) == ("2011-01-02T10:00:00", "2011-03-04T09:00:00")
    shuffled = data_fingerprint(purchases.reverse().select(reversed(purchases.columns)))
    assert shuffled["purchases_sha256"] == fp["purchases_sha256"]
    changed = purchases.with_columns(pl.when(pl.col("quantity") == 3).then(4).otherwise("quantity"))
    assert data_fingerprint(changed)["purchases_sha256"] != fp["purchases_sha256"]


def test_data_fingerprint_records_a_relative_sqlite_store_as_absolute(
    tmp_path, monkeypatch
) -> None:
    from sqlalchemy.engine import make_url

    from retail_clv.models.scoring import store_key

    monkeypatch.chdir(tmp_path)
    fp = data_fingerprint(_purchases(), "sqlite:///data/shop.db")
    assert fp["database_url"] == f"sqlite:///{tmp_path.resolve() / 'data' / 'shop.db'}"
    # recognised as the same store from another working directory, spelled either way
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert store_key(fp["database_url"]) == store_key(f"sqlite:///{tmp_path}/data/shop.db")
    assert store_key(fp["database_url"]) == store_key("sqlite:///../data/shop.db")
    # in-memory and URI file names are kept as written
    assert data_fingerprint(_purchases(), "sqlite://")["database_url"] == "sqlite://"
    uri = data_fingerprint(_purchases(), "sqlite:///file:shop.db?mode=ro&uri=true")
    assert make_url(uri["database_url"]).database == "file:shop.db"


def test_unevaluated_run_with_numpy_values_saves_loads_and_has_null_r2(tmp_path: Path) -> None:
    """A run trained up to the end of the data (no held-out window), numpy types in results."""
    result = toy_result()
    result.metrics = {"cutoff": "2011-12-10", "horizon_days": 30, "models": {}, "baselines": {}}
    result.holdout = result.holdout.head(0)
    result.best_params = {"model1": {"alpha": np.float64(0.5), "depth": np.int64(3)}}
    result.cv_scores = {"model1": np.array([0.25, float("nan")])}
    models_dir = tmp_path / "models"
    run_dir = save_run(result, models_dir, FINGERPRINT)
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["best_params"] == {"model1": {"alpha": 0.5, "depth": 3}}
    assert meta["cv_scores"] == {"model1": [0.25, None]}
    assert not (run_dir / "holdout.parquet").exists()
    assert "Not evaluated" in (run_dir / "model_card.md").read_text()
    bundle = load_run(models_dir)
    assert bundle.r2_model1 is None and bundle.r2_model2 is None
    predictions = bundle.predict(toy_features())
    assert predictions["r2_model1"].null_count() == predictions.height
    assert predictions.schema["r2_model2"] == pl.Float64


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _repo_with(tmp_path: Path, package: str) -> tuple[Path, str]:
    """A git repository holding one committed file in ``package``; its folder and HEAD."""
    (tmp_path / package).mkdir(parents=True)
    (tmp_path / package / "registry.py").write_text("# a file\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "one")
    return tmp_path / package, _git(tmp_path, "rev-parse", "HEAD")


def test_git_commit_is_recorded_for_a_checkout_of_retail_clv(tmp_path: Path) -> None:
    source, head = _repo_with(tmp_path, "src/retail_clv")
    assert registry._git_info(source) == {"commit": head, "dirty": False}
    (source / "registry.py").write_text("# edited\n")
    assert registry._git_info(source) == {"commit": head, "dirty": True}


def test_git_commit_of_this_checkout_is_recorded_by_default() -> None:
    package = Path(registry.__file__).resolve().parents[1]
    top = package.parents[1]
    if not (top / ".git").exists() or package != top / "src" / "retail_clv":
        pytest.skip("retail-clv is not imported from a git checkout of its own here")
    assert registry._git_info()["commit"] == _git(top, "rev-parse", "HEAD")


def test_git_commit_is_recorded_from_a_folder_whose_name_holds_a_space(tmp_path: Path) -> None:
    source, head = _repo_with(tmp_path / "my shop", "src/retail_clv")
    assert registry._git_info(source)["commit"] == head


def test_git_commit_of_another_project_holding_the_installed_package_is_not_recorded(
    tmp_path: Path,
) -> None:
    # retail-clv installed in a shop's own git project (its .venv inside the repository)
    source, _ = _repo_with(tmp_path, ".venv/lib/python3.12/site-packages/retail_clv")
    assert registry._git_info(source) == {"commit": None, "dirty": None}


def test_git_commit_outside_any_repository_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "retail_clv").mkdir()
    assert registry._git_info(tmp_path / "retail_clv") == {"commit": None, "dirty": None}
