"""Versioned model artifacts: save a training run, list runs, load one with verification.

A run lives in ``<models_dir>/<run-id>/`` where ``run-id`` is ``YYYYMMDDTHHMMSSZ-xxxxxx``
(UTC time of training plus 6 random hex digits: sortable and unique). It holds::

    model1.joblib  model2.joblib  products.joblib   fitted scikit-learn estimators
    metadata.json      run id, dates, features, metrics, parameters, data fingerprint,
                       git commit, library versions
    metrics.json       the held-out metrics dict (same shape as ``clv backtest --json``)
    holdout.parquet    per-customer held-out predictions and actuals (when evaluated)
    model_card.md      human-readable card, with the PNG plots it references
    checksums.json     sha256 of every other file

``<models_dir>/latest`` points at the newest run: a relative symlink where the file system
allows it, else a ``LATEST`` text file holding the run id. :func:`load_run` handles both.

Security: joblib files are pickles. Loading one can run arbitrary code, so only load runs
that you (or your pipeline) wrote in this environment. The checksums detect corruption and
accidental edits; they are not a signature against a deliberate attacker who can rewrite
``checksums.json`` too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import pickle
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from retail_clv.errors import ModelMismatchError, ModelNotFoundError
from retail_clv.features.build import FEATURE_VERSION

if TYPE_CHECKING:
    from retail_clv.models.training import TrainResult

__all__ = [
    "ARTIFACT_FORMAT",
    "MODEL_FILES",
    "ModelBundle",
    "data_fingerprint",
    "latest_run_id",
    "library_versions",
    "list_runs",
    "load_run",
    "new_run_id",
    "resolve_run_dir",
    "save_run",
    "verify_checksums",
]

logger = logging.getLogger(__name__)

#: Version of the on-disk layout; bump when a loader could misread older runs.
ARTIFACT_FORMAT = 1

#: Attribute of ``TrainResult`` -> file name inside the run directory.
MODEL_FILES: dict[str, str] = {
    "model1": "model1.joblib",
    "model2": "model2.joblib",
    "products_model": "products.joblib",
}

#: Libraries recorded in every run; those in ``_STRICT_LIBRARIES`` must match on load.
_RECORDED_LIBRARIES = (
    "retail-clv",
    "numpy",
    "pandas",
    "polars",
    "scikit-learn",
    "xgboost",
    "joblib",
    "lifetimes",
    "scipy",
)
#: Pickled estimators are only guaranteed to load and behave identically with the same
#: major.minor release of the library that defines their classes.
_STRICT_LIBRARIES = ("scikit-learn", "xgboost")
#: Libraries that compute the features at scoring time (Polars the windows, lifetimes and SciPy
#: the BG/NBD + Gamma-Gamma fit): another major.minor release can move the features a little,
#: so loading such a run logs a warning rather than refusing it.
_FEATURE_LIBRARIES = ("polars", "lifetimes", "scipy")

_RUN_ID_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
_LATEST_LINK = "latest"
_LATEST_FILE = "LATEST"
_CHECKSUMS = "checksums.json"
_METADATA = "metadata.json"
_METRICS = "metrics.json"
_HOLDOUT = "holdout.parquet"
_CARD = "model_card.md"
_TMP_PREFIX = ".tmp-"
_NO_RUN_HINT = "run `clv train` first"


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def new_run_id(now: dt.datetime | None = None) -> str:
    """Return a new sortable, unique run id such as ``20261127T150102Z-3fa9c1``.

    Parameters
    ----------
    now : datetime.datetime, optional
        Time of the run (converted to UTC); defaults to the current time.

    Returns
    -------
    str
        ``YYYYMMDDTHHMMSSZ-`` followed by 6 random lowercase hex digits.
    """
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    """Convert ``value`` to plain JSON types (NaN/inf -> None, dates -> ISO strings)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, pl.DataFrame):
        return _jsonable(value.to_dicts())
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and getattr(value, "shape", None) == ():
        return _jsonable(item())
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return _jsonable(tolist())
    return repr(value)


def _write_json(path: Path, payload: Any) -> None:
    text = json.dumps(_jsonable(payload), indent=2, sort_keys=False, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def library_versions() -> dict[str, str | None]:
    """Return the versions of Python and the libraries a run depends on.

    Returns
    -------
    dict
        ``{"python": "3.11.7", "retail-clv": ..., "numpy": ..., "pandas": ..., "polars": ...,
        "scikit-learn": ..., "xgboost": ..., "joblib": ..., "lifetimes": ..., "scipy": ...}``;
        ``None`` when not installed.
    """
    versions: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in _RECORDED_LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git_info(source: Path = Path(__file__).resolve().parents[1]) -> dict[str, Any]:
    """Return the git commit (and whether the tree is dirty) of the package source, if any.

    Only a checkout of retail-clv itself counts: ``source`` (the package folder) must be the
    repository's ``src/retail_clv``. An installed copy inside some other repository (a shop's
    project with its ``.venv``) would otherwise record that project's commit; it records
    ``None`` instead.
    """
    source = source.resolve()
    unknown: dict[str, Any] = {"commit": None, "dirty": None}
    try:
        top, commit = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.splitlines()  # a folder name may hold spaces
        if (Path(top) / "src" / "retail_clv").resolve() != source:
            return unknown
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError, ValueError):  # ValueError: not two lines
        return unknown
    return {"commit": commit, "dirty": bool(status.strip())}


def _redact_url(url: str | None) -> str | None:
    """Return ``url`` without its password (SQLAlchemy URLs); other strings unchanged.

    A relative SQLite file is recorded as absolute, so that the run's store is recognised from
    any working directory (``scoring.trained_on_this_store``).
    """
    if url is None:
        return None
    try:
        from sqlalchemy.engine import URL, make_url

        parsed = make_url(url)
    except Exception:  # not a SQLAlchemy URL: keep only what precedes any credentials
        return re.sub(r"//[^/@]*@", "//", url)
    database = parsed.database
    # an in-memory store and a URI file name ("file:...") are kept as written
    if (
        parsed.get_backend_name() == "sqlite"
        and database not in (None, "", ":memory:")
        and not database.startswith("file:")
    ):
        database = str(Path(database).expanduser().resolve())
    without_password = URL.create(
        drivername=parsed.drivername,
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=database,
        query=parsed.query,
    )
    return without_password.render_as_string(hide_password=False)


def data_fingerprint(
    purchases: pl.DataFrame,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Describe the training data so a run can be traced back to the exact snapshot.

    Parameters
    ----------
    purchases : polars.DataFrame
        Valid purchase lines (``read_purchases`` columns).
    database_url : str, optional
        URL of the store; the password is removed before it is recorded.

    Returns
    -------
    dict
        ``database_url, n_purchases, n_customers, date_min, date_max, purchases_sha256``.
        ``purchases_sha256`` is the sha256 of the purchases
        sorted by every column and serialised as CSV, so it does not depend on row order.
    """
    n_rows = purchases.height
    if n_rows:
        ordered = purchases.select(sorted(purchases.columns)).sort(sorted(purchases.columns))
        content_hash = hashlib.sha256(ordered.write_csv().encode("utf-8")).hexdigest()
        date_min = purchases["invoice_date"].min() if "invoice_date" in purchases.columns else None
        date_max = purchases["invoice_date"].max() if "invoice_date" in purchases.columns else None
        n_customers = (
            purchases["customer_id"].n_unique() if "customer_id" in purchases.columns else None
        )
    else:
        content_hash = hashlib.sha256(b"").hexdigest()
        date_min = date_max = None
        n_customers = 0
    fingerprint: dict[str, Any] = {
        "database_url": _redact_url(database_url),
        "n_purchases": n_rows,
        "n_customers": n_customers,
        "date_min": _jsonable(date_min),
        "date_max": _jsonable(date_max),
        "purchases_sha256": content_hash,
    }
    return fingerprint


def _holdout_r2(metrics: Mapping[str, Any] | None, model: str) -> float | None:
    """Return the held-out R² of ``model`` recorded in a metrics dict, if any."""
    if not metrics:
        return None
    value = (metrics.get("models") or {}).get(model, {}).get("r2")
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------
# Bundle
# --------------------------------------------------------------------------------------------


@dataclass
class ModelBundle:
    """A loaded, verified model run, ready to score feature frames.

    Attributes
    ----------
    run_id : str
        Id of the run (its directory name).
    metadata : dict
        Content of ``metadata.json``: ``run_id, trained_at, as_of, horizon_days,
        feature_names, metrics, feature_importance, best_params, cv_scores, config,
        data_fingerprint, git, library_versions``.
    model1, model2, products_model : object
        The fitted estimators (take a pandas DataFrame with columns ``feature_names``).
    path : pathlib.Path
        The run directory.
    """

    run_id: str
    metadata: dict[str, Any]
    model1: Any = field(repr=False)
    model2: Any = field(repr=False)
    products_model: Any = field(repr=False)
    path: Path

    @property
    def feature_names(self) -> list[str]:
        """Model input columns, in training order."""
        return list(self.metadata["feature_names"])

    @property
    def r2_model1(self) -> float | None:
        """R² of Model 1 on the run's held-out window (``None`` when not evaluated)."""
        return _holdout_r2(self.metadata.get("metrics"), "model1")

    @property
    def r2_model2(self) -> float | None:
        """R² of Model 2 on the run's held-out window (``None`` when not evaluated)."""
        return _holdout_r2(self.metadata.get("metrics"), "model2")

    def predict(self, features: pl.DataFrame) -> pl.DataFrame:
        """Predict spend and products for every row of a feature frame.

        Parameters
        ----------
        features : polars.DataFrame
            Output of :func:`retail_clv.features.customer_features` (``customer_id`` plus at
            least every column of ``feature_names``).

        Returns
        -------
        polars.DataFrame
            ``customer_id, predicted_spend_30d_model1, predicted_spend_30d_model2,
            predicted_products_30d, r2_model1, r2_model2``; the two R² columns repeat the R²
            each model reached on the run's held-out window (null when not evaluated).

        Raises
        ------
        ModelMismatchError
            When the frame lacks a column the models need.
        """
        needed = ["customer_id", *self.feature_names]
        missing = [name for name in needed if name not in features.columns]
        if missing:
            raise ModelMismatchError(
                f"model run {self.run_id} needs feature columns that the data lacks: "
                f"{', '.join(missing)}; the feature code changed since training: retrain with "
                "`clv train`"
            )
        from retail_clv.models.training import predict_frame

        predictions = predict_frame(
            self.model1, self.model2, self.products_model, features, self.feature_names
        )
        return predictions.with_columns(
            pl.lit(self.r2_model1, dtype=pl.Float64).alias("r2_model1"),
            pl.lit(self.r2_model2, dtype=pl.Float64).alias("r2_model2"),
        )


# --------------------------------------------------------------------------------------------
# Save
# --------------------------------------------------------------------------------------------


def _point_latest(models_dir: Path, run_id: str) -> None:
    """Atomically point ``latest`` at ``run_id`` (symlink, else a ``LATEST`` text file)."""
    link = models_dir / _LATEST_LINK
    marker = models_dir / _LATEST_FILE
    tmp_link = models_dir / f"{_TMP_PREFIX}latest-{secrets.token_hex(4)}"
    try:
        os.symlink(run_id, tmp_link, target_is_directory=True)
        os.replace(tmp_link, link)
    except (OSError, NotImplementedError) as exc:
        logger.info("cannot create the symlink %s (%s); writing %s instead", link, exc, marker)
        tmp_link.unlink(missing_ok=True)
        if link.is_symlink():
            link.unlink()
        tmp_marker = models_dir / f"{_TMP_PREFIX}LATEST-{secrets.token_hex(4)}"
        tmp_marker.write_text(run_id + "\n", encoding="utf-8")
        os.replace(tmp_marker, marker)
        return
    marker.unlink(missing_ok=True)


def save_run(result: TrainResult, models_dir: Path, data_fingerprint: dict[str, Any]) -> Path:
    """Write a training result as a new versioned run and point ``latest`` at it.

    Everything is written to a temporary directory inside ``models_dir`` and renamed into
    place at the end, so a crash never leaves a half-written run under a run id.

    Parameters
    ----------
    result : TrainResult
        Output of :func:`retail_clv.models.training.train`.
    models_dir : pathlib.Path
        Folder of all runs (created when missing).
    data_fingerprint : dict
        Description of the training data, e.g. from :func:`data_fingerprint`.

    Returns
    -------
    pathlib.Path
        The new run directory ``<models_dir>/<run-id>``.
    """
    import joblib

    from retail_clv.models.card import write_model_card

    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    trained_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    run_id = new_run_id(trained_at)
    while (models_dir / run_id).exists():  # same second and same 24 random bits: retry
        run_id = new_run_id(trained_at)
    tmp_dir = models_dir / f"{_TMP_PREFIX}{run_id}"
    tmp_dir.mkdir()
    try:
        for attribute, filename in MODEL_FILES.items():
            joblib.dump(getattr(result, attribute), tmp_dir / filename, compress=3)
        metrics = result.metrics or {}
        holdout = getattr(result, "holdout", None)
        files = dict(MODEL_FILES)
        if isinstance(holdout, pl.DataFrame) and holdout.height:
            holdout.write_parquet(tmp_dir / _HOLDOUT)
            files["holdout"] = _HOLDOUT
        metadata: dict[str, Any] = {
            "artifact_format": ARTIFACT_FORMAT,
            "feature_version": FEATURE_VERSION,
            "run_id": run_id,
            "trained_at": trained_at.isoformat().replace("+00:00", "Z"),
            "as_of": result.as_of,
            "horizon_days": int(result.horizon_days),
            "feature_names": list(result.feature_names),
            "metrics": metrics,
            "feature_importance": result.feature_importance,
            "best_params": result.best_params,
            "cv_scores": result.cv_scores,
            "config": result.config,
            "bgnbd_params": getattr(result, "bgnbd_params", None),
            "data_fingerprint": data_fingerprint,
            "git": _git_info(),
            "library_versions": library_versions(),
            "files": files,
        }
        metadata = _jsonable(metadata)
        _write_json(tmp_dir / _METADATA, metadata)
        _write_json(tmp_dir / _METRICS, metrics)
        write_model_card(metadata, tmp_dir)
        checksums = {
            path.name: _sha256_file(path)
            for path in sorted(tmp_dir.iterdir())
            if path.is_file() and path.name != _CHECKSUMS
        }
        _write_json(tmp_dir / _CHECKSUMS, {"algorithm": "sha256", "files": checksums})
        run_dir = models_dir / run_id
        os.rename(tmp_dir, run_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    _point_latest(models_dir, run_id)
    logger.info("saved model run %s to %s", run_id, run_dir)
    return run_dir


# --------------------------------------------------------------------------------------------
# Resolve, verify, load, list
# --------------------------------------------------------------------------------------------


def _is_run_id(name: str) -> bool:
    return bool(_RUN_ID_RE.fullmatch(name))


def _run_ids(models_dir: Path) -> list[str]:
    if not models_dir.is_dir():
        return []
    return sorted(
        entry.name
        for entry in models_dir.iterdir()
        if _is_run_id(entry.name) and entry.is_dir() and not entry.is_symlink()
    )


def _latest_run_id(models_dir: Path) -> str:
    link = models_dir / _LATEST_LINK
    marker = models_dir / _LATEST_FILE
    target: str | None = None
    if link.is_symlink():
        target = Path(os.readlink(link)).name
    elif link.is_file():
        target = link.read_text(encoding="utf-8").strip()
    elif marker.is_file():
        target = marker.read_text(encoding="utf-8").strip()
    if target is None:
        runs = _run_ids(models_dir)
        if not runs:
            raise ModelNotFoundError(f"no trained model in {models_dir}: {_NO_RUN_HINT}")
        return runs[-1]
    if not _is_run_id(target):
        raise ModelMismatchError(
            f"the latest-run pointer in {models_dir} names an invalid run id {target!r}; "
            "retrain with `clv train` or pass an explicit run id"
        )
    return target


def latest_run_id(models_dir: Path) -> str | None:
    """Return the id the ``latest`` pointer names (the newest run without one), else ``None``.

    Cheap (a ``readlink`` or a small read): the API calls it every few seconds to follow runs
    trained by another process.
    """
    try:
        return _latest_run_id(Path(models_dir)) if Path(models_dir).is_dir() else None
    except (ModelNotFoundError, ModelMismatchError):
        return None


def resolve_run_dir(models_dir: Path, run_id: str = "latest") -> Path:
    """Return the directory of a run, refusing anything outside ``models_dir``.

    Parameters
    ----------
    models_dir : pathlib.Path
        Folder of all runs.
    run_id : str
        ``"latest"`` or an exact run id (``YYYYMMDDTHHMMSSZ-xxxxxx``); anything else
        (``..``, paths, absolute names) is refused.

    Returns
    -------
    pathlib.Path
        The resolved run directory (inside ``models_dir``).

    Raises
    ------
    ModelNotFoundError
        When the id is malformed or the run does not exist.
    """
    models_dir = Path(models_dir)
    if run_id != "latest" and not _is_run_id(run_id):
        raise ModelNotFoundError(
            f"invalid model run id {run_id!r}: expected 'latest' or an id like "
            "20261127T150102Z-3fa9c1 (see `clv models` / GET /models)"
        )
    if not models_dir.is_dir():
        raise ModelNotFoundError(f"no trained model in {models_dir}: {_NO_RUN_HINT}")
    name = _latest_run_id(models_dir) if run_id == "latest" else run_id
    run_dir = models_dir / name
    root = models_dir.resolve()
    resolved = run_dir.resolve()
    if resolved.parent != root or not resolved.is_dir():
        if not run_dir.exists():
            others = _run_ids(models_dir)
            if run_id == "latest" and others:
                raise ModelNotFoundError(
                    f"models/latest names the run {name}, which is not in {models_dir} any more; "
                    f"point it at another run ({len(others)} there, newest {others[-1]}: ln -sfn "
                    f"<run-id> {models_dir / _LATEST_LINK}; list them with clv models) or "
                    "train again with clv train"
                )
            hint = "list the runs there with clv models" if others else _NO_RUN_HINT
            raise ModelNotFoundError(f"model run {name} not found in {models_dir}: {hint}")
        raise ModelNotFoundError(f"model run {name} is not a directory inside {models_dir}")
    return resolved


def verify_checksums(run_dir: Path) -> dict[str, str]:
    """Check every file listed in ``checksums.json`` against its sha256.

    Parameters
    ----------
    run_dir : pathlib.Path
        A run directory.

    Returns
    -------
    dict
        File name -> sha256 of the verified files.

    Raises
    ------
    ModelMismatchError
        When ``checksums.json`` is missing or malformed, a listed file is missing, or a hash
        differs.
    """
    path = run_dir / _CHECKSUMS
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        expected = dict(payload["files"])
    except FileNotFoundError:
        raise ModelMismatchError(
            f"model run {run_dir.name} has no {_CHECKSUMS}: it is incomplete or was not "
            "written by `clv train`; retrain"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelMismatchError(
            f"model run {run_dir.name}: {_CHECKSUMS} is malformed ({exc}); retrain"
        ) from None
    required = {_METADATA, *MODEL_FILES.values()}
    unlisted = sorted(required - expected.keys())
    if unlisted:
        raise ModelMismatchError(
            f"model run {run_dir.name}: {_CHECKSUMS} does not cover {', '.join(unlisted)}; "
            "retrain with `clv train`"
        )
    for name, digest in sorted(expected.items()):
        target = run_dir / name
        if Path(name).name != name or not target.is_file():
            raise ModelMismatchError(
                f"model run {run_dir.name}: file {name!r} listed in {_CHECKSUMS} is missing"
            )
        actual = _sha256_file(target)
        if actual != digest:
            raise ModelMismatchError(
                f"model run {run_dir.name}: checksum mismatch for {name} (expected "
                f"{str(digest)[:12]}..., found {actual[:12]}...): the file was modified or "
                "corrupted; retrain with `clv train` or restore the run"
            )
    extra = sorted(
        p.name
        for p in run_dir.iterdir()
        if p.is_file() and p.name != _CHECKSUMS and p.name not in expected
    )
    if extra:
        logger.warning("model run %s holds unlisted files (ignored): %s", run_dir.name, extra)
    return expected


def _major_minor(version: str | None) -> tuple[int, ...] | None:
    if not version:
        return None
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _check_versions(run_id: str, metadata: Mapping[str, Any]) -> None:
    # runs saved before the version was recorded were trained on version 1
    trained_on = metadata.get("feature_version", 1)
    if trained_on != FEATURE_VERSION:
        raise ModelMismatchError(
            f"model run {run_id} was trained on features of version {trained_on}; this "
            f"retail-clv computes version {FEATURE_VERSION} (docs/features.md), and scoring it "
            "with them would skew its predictions: retrain with `clv train`"
        )
    recorded = metadata.get("library_versions") or {}
    installed = library_versions()
    problems = []
    for name in _STRICT_LIBRARIES:
        then, now = recorded.get(name), installed.get(name)
        if _major_minor(then) is None or _major_minor(then) != _major_minor(now):
            problems.append(f"{name} {then or 'unknown'} (installed: {now or 'none'})")
    if problems:
        raise ModelMismatchError(
            f"model run {run_id} was trained with {'; '.join(problems)}; pickled models need "
            "the same major.minor versions: retrain with `clv train` in this environment "
            "(or install the recorded versions)"
        )
    moved = [
        f"{name} {recorded[name]} (installed: {installed.get(name) or 'none'})"
        for name in _FEATURE_LIBRARIES
        if recorded.get(name) is not None  # runs saved before lifetimes/SciPy were recorded
        and _major_minor(recorded[name]) != _major_minor(installed.get(name))
    ]
    if moved:
        logger.warning(
            "model run %s was trained with %s; features computed with other releases can "
            "differ slightly from the ones it learned from: retrain with `clv train` in this "
            "environment for scores that follow it exactly",
            run_id,
            "; ".join(moved),
        )


def _read_metadata(run_dir: Path) -> dict[str, Any]:
    try:
        metadata = json.loads((run_dir / _METADATA).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelMismatchError(
            f"model run {run_dir.name}: cannot read {_METADATA} ({exc}); retrain"
        ) from None
    if not isinstance(metadata, dict):
        raise ModelMismatchError(f"model run {run_dir.name}: {_METADATA} is not an object")
    return metadata


def load_run(models_dir: Path, run_id: str = "latest") -> ModelBundle:
    """Load a run after verifying its checksums and library versions.

    Checksums are verified *before* anything is unpickled. joblib files are pickles: only
    load runs written by this project in a trusted environment.

    Parameters
    ----------
    models_dir : pathlib.Path
        Folder of all runs.
    run_id : str
        ``"latest"`` (default) or an exact run id.

    Returns
    -------
    ModelBundle
        The verified models and their metadata.

    Raises
    ------
    ModelNotFoundError
        When there is no such run (message says to run ``clv train`` first).
    ModelMismatchError
        When a checksum, the artifact format, the run id or the major.minor version of
        scikit-learn / xgboost differs from what the run recorded.
    """
    import joblib

    run_dir = resolve_run_dir(models_dir, run_id)
    verify_checksums(run_dir)
    metadata = _read_metadata(run_dir)
    if metadata.get("artifact_format") != ARTIFACT_FORMAT:
        raise ModelMismatchError(
            f"model run {run_dir.name} has artifact format {metadata.get('artifact_format')!r}; "
            f"this version of retail-clv reads format {ARTIFACT_FORMAT}: retrain with `clv train`"
        )
    if metadata.get("run_id") != run_dir.name:
        raise ModelMismatchError(
            f"model run directory {run_dir.name} holds metadata of run "
            f"{metadata.get('run_id')!r}; it was renamed or copied: retrain or restore it"
        )
    _check_versions(run_dir.name, metadata)
    models: dict[str, Any] = {}
    for attr, name in MODEL_FILES.items():
        try:
            models[attr] = joblib.load(run_dir / name)
        except (AttributeError, ImportError, EOFError, ValueError, pickle.UnpicklingError) as exc:
            # e.g. a class of retail_clv.models renamed since training
            raise ModelMismatchError(
                f"model run {run_dir.name}: cannot load {name} ({type(exc).__name__}: {exc}); "
                "it was written by different code: retrain with `clv train`"
            ) from None
    feature_names = list(metadata.get("feature_names") or [])
    for attr, model in models.items():
        fitted_on = getattr(model, "feature_names_in_", None)
        if fitted_on is not None and list(fitted_on) != feature_names:
            raise ModelMismatchError(
                f"model run {run_dir.name}: {attr} was fitted on columns that differ from the "
                "recorded feature_names; retrain with `clv train`"
            )
    logger.info("loaded model run %s", run_dir.name)
    return ModelBundle(
        run_id=run_dir.name,
        metadata=metadata,
        model1=models["model1"],
        model2=models["model2"],
        products_model=models["products_model"],
        path=run_dir,
    )


def list_runs(models_dir: Path) -> list[dict[str, Any]]:
    """List the runs in ``models_dir``, newest first (metadata only, nothing unpickled).

    Parameters
    ----------
    models_dir : pathlib.Path
        Folder of all runs.

    Returns
    -------
    list of dict
        ``{"run_id", "trained_at", "as_of", "horizon_days", "active", "r2_model1",
        "r2_model2", "database_url"}`` per run; ``active`` marks the run ``latest`` points at;
        ``database_url`` is the training store as the run recorded it (no password), ``None``
        when not recorded. Runs whose metadata cannot be read are skipped with a warning.
    """
    models_dir = Path(models_dir)
    runs = _run_ids(models_dir)
    if not runs:
        return []
    active = latest_run_id(models_dir)
    listed = []
    for run_id in reversed(runs):
        try:
            metadata = _read_metadata(models_dir / run_id)
        except ModelMismatchError as exc:
            logger.warning("skipping unreadable model run %s: %s", run_id, exc)
            continue
        metrics = metadata.get("metrics")
        listed.append(
            {
                "run_id": run_id,
                "trained_at": metadata.get("trained_at"),
                "as_of": metadata.get("as_of"),
                "horizon_days": metadata.get("horizon_days"),
                "active": run_id == active,
                "r2_model1": _holdout_r2(metrics, "model1"),
                "r2_model2": _holdout_r2(metrics, "model2"),
                "database_url": (metadata.get("data_fingerprint") or {}).get("database_url"),
            }
        )
    return listed
