"""The API's only doorway into the core packages (ingest, store, features, models).

Routes never import the core directly: they call these thin functions, which keeps the web layer
thin (GUIDE item 1) and gives tests one place to substitute a slow piece. Imports are local so
that importing the API stays cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlalchemy as sa

if TYPE_CHECKING:
    from retail_clv.ingest.pipeline import CheckedFiles

logger = logging.getLogger(__name__)


def load_bundle(models_dir: Path, run_id: str = "latest") -> Any:
    """Load a model run with checksum and version verification (``registry.load_run``)."""
    from retail_clv.models.registry import load_run

    return load_run(Path(models_dir), run_id)


def latest_run_id(models_dir: Path) -> str | None:
    """Return the run id ``latest`` names, or None (``registry.latest_run_id``)."""
    from retail_clv.models.registry import latest_run_id as _latest_run_id

    return _latest_run_id(Path(models_dir))


def list_runs(models_dir: Path) -> list[dict[str, Any]]:
    """Return the metadata of every model run (``registry.list_runs``)."""
    from retail_clv.models.registry import list_runs as _list_runs

    return list(_list_runs(Path(models_dir)))


def read_store(engine: sa.Engine) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return the store's valid purchases and its cancellations."""
    from retail_clv.store.queries import read_cancellations, read_purchases

    return read_purchases(engine), read_cancellations(engine)


def store_signature(engine: sa.Engine) -> tuple[Any, ...]:
    """Return a fingerprint that every ingest and undo changes (``store.runs``)."""
    from retail_clv.store.runs import store_signature as _store_signature

    return _store_signature(engine)


def column_map(options: Sequence[str] | None) -> dict[str, str] | None:
    """Parse ``field=Column Name`` items (the CLI's ``--column``) into a mapping, or ``None``."""
    if not options:
        return None
    from retail_clv.ingest.columns import parse_column_options

    return parse_column_options(options)


def clean_file(
    path: Path,
    columns: dict[str, str] | None = None,
    day_first: bool | None = None,
    sheets: Sequence[str] = (),
) -> Any:
    """Read and clean one file without touching the store (``ingest.pipeline.clean_file``).

    ``day_first`` forces slash dates day-first (True, ``clv ingest --day-first``) or
    month-first (False, ``--month-first``); None decides per column. ``sheets`` names the
    workbook sheets to read (``--sheet``); empty: every sheet.
    """
    from retail_clv.ingest.pipeline import clean_file as _clean_file

    return _clean_file(path, columns, day_first=day_first, sheets=sheets)


def check_file(
    path: Path, columns: dict[str, str] | None = None, sheets: Sequence[str] = ()
) -> CheckedFiles:
    """Check that one file can be ingested, before the store is used (``check_files``)."""
    from retail_clv.ingest.pipeline import check_files

    return check_files([path], columns, sheets=sheets)


def ingest_file(
    path: Path | CheckedFiles,
    engine: sa.Engine,
    columns: dict[str, str] | None = None,
    day_first: bool | None = None,
    sheets: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Ingest one file (or the file ``check_file`` checked) into the store; reports as dicts.

    ``day_first`` and ``sheets`` as for :func:`clean_file`.
    """
    from retail_clv.ingest.pipeline import CheckedFiles, ingest_files

    reports = ingest_files(
        path if isinstance(path, CheckedFiles) else [path],
        engine,
        column_map=columns,
        progress=False,
        day_first=day_first,
        sheets=sheets,
    )
    return [_with_no_purchase_warning(report) for report in reports]


def _with_no_purchase_warning(report: Any) -> dict[str, Any]:
    """Return ``report`` as a dict, warning when it loaded no valid purchase line.

    ``clv ingest`` exits with an error for such a file; the API answers 200 (its rejected rows
    are stored, for the record), so the report itself must say it.
    """
    out = report.to_dict()
    message = report.no_purchase_line_message()
    if message is not None:
        out["warnings"] = [*out["warnings"], message]
    return out


def store_cleaned(path: Path, result: Any, engine: sa.Engine) -> dict[str, Any]:
    """Store a file ``clean_file`` has already cleaned (``ingest.pipeline.store_result``).

    ``POST /pipeline?store=true`` scores the cleaned rows and stores the same result, instead of
    reading and cleaning the upload a second time; the report is returned as a dict.
    """
    from retail_clv.ingest.pipeline import store_result

    return _with_no_purchase_warning(store_result(engine, path, result))


def score(
    bundle: Any,
    purchases: pl.DataFrame,
    cancellations: pl.DataFrame,
    as_of: date | None = None,
    notes: list[str] | None = None,
) -> pl.DataFrame:
    """Score every customer of the frames with the bundle (``models.scoring.score``)."""
    from retail_clv.models.scoring import score as _score

    return _score(bundle, purchases, cancellations, as_of=as_of, notes=notes)


def customer_features(
    purchases: pl.DataFrame, cancellations: pl.DataFrame, cutoffs: Sequence[date]
) -> pl.DataFrame:
    """Compute customer features as of each cutoff (``features.customer_features``)."""
    from retail_clv.features import customer_features as _customer_features

    return _customer_features(purchases, cancellations, cutoffs)


def predictions_csv(scored: pl.DataFrame, horizon_days: int) -> str:
    """Render scores as the ``clv predict`` CSV, text cells safe from formula injection."""
    from retail_clv.models.scoring import to_csv_frame

    return to_csv_frame(scored, horizon_days).write_csv()


def write_predictions(
    engine: sa.Engine, frame: pl.DataFrame, run_id: str, as_of: date, horizon_days: int
) -> int:
    """Replace the ``predictions`` table with these scores, as ``clv predict`` does.

    Customers absent from ``frame`` (their ingest run undone, say) lose their old score
    (``store.predictions.write_predictions`` with ``replace_all``).
    """
    from retail_clv.store.predictions import write_predictions as _write

    return _write(engine, frame, run_id, as_of, horizon_days, replace_all=True)


def read_all_predictions(engine: sa.Engine) -> pl.DataFrame:
    """Return every stored score (``store.predictions.read_predictions``)."""
    from retail_clv.store.predictions import read_predictions

    return read_predictions(engine)


def read_one_prediction(engine: sa.Engine, customer_id: str) -> dict[str, Any] | None:
    """Return one customer's stored score or ``None`` (``store.predictions.read_prediction``)."""
    from retail_clv.store.predictions import read_prediction

    return read_prediction(engine, customer_id)


def check_max_train_cutoffs(
    cap: int | None, budget: str, horizon_days: int, name: str, remedy: str
) -> None:
    """Refuse a cap on training cutoffs the budget cannot train with (``SettingError``)."""
    if cap is None:
        return
    from retail_clv.models.training import check_max_train_cutoffs as check

    check(cap, budget, horizon_days, name, remedy)  # type: ignore[arg-type]


def run_training(
    engine: sa.Engine,
    models_dir: Path,
    as_of: date | None,
    horizon_days: int,
    budget: str,
    progress: Callable[[float, str], None],
    write_scores: bool = True,
    n_jobs: int | None = None,
    max_train_cutoffs: int | None = None,
) -> dict[str, Any]:
    """Train on the store, save the run, and (optionally) rescore every customer.

    Parameters
    ----------
    engine
        The store.
    models_dir
        Where the run is written (``models/<run-id>``, ``models/latest``).
    as_of
        Training cutoff; default ``scoring.default_training_as_of`` (last purchase date minus
        the horizon, as ``clv train``), so the last window is evaluated.
    horizon_days
        Prediction horizon.
    budget
        ``"quick"`` or ``"default"`` hyper-parameter search budget.
    progress
        Callback ``(fraction, message)`` fed by the training.
    write_scores
        Also score every customer as of the day after the last purchase with the new run and
        replace the ``predictions`` table.
    n_jobs
        CPU threads of the forest and XGBoost; default the ``CLV_N_JOBS`` setting.
    max_train_cutoffs
        Train on at most this many cutoffs, the newest; ``None``: all history.

    Returns
    -------
    dict
        ``run_id``, ``as_of``, ``metrics``, ``predictions_written`` and ``store_changed``
        (an ingest or undo landed while training, seen when rescoring: the rescoring then read
        the store again; always False without ``write_scores``). The run is
        ``<models_dir>/<run_id>``; the server's path is not part of the answer (job results are
        served to anyone who can read ``GET /jobs``).
    """
    from retail_clv.config import get_settings
    from retail_clv.errors import NotEnoughDataError
    from retail_clv.models.registry import data_fingerprint, load_run, save_run
    from retail_clv.models.scoring import rescoring_as_of, training_as_of

    progress(0.01, "reading the store")
    signature = store_signature(engine)
    purchases, cancellations = read_store(engine)
    if purchases.height == 0:
        raise NotEnoughDataError(
            "The store is empty: ingest a file first (clv ingest FILE or POST /ingest)"
        )
    more = "ingest more history (clv ingest FILE or POST /ingest)"
    cutoff = training_as_of(purchases, as_of, horizon_days, "as_of", more, budget)

    def scaled(fraction: float, message: str) -> None:
        progress(0.02 + 0.88 * min(1.0, max(0.0, fraction)), message)

    from retail_clv.models.training import train

    result = train(
        purchases,
        cancellations,
        as_of=cutoff,
        horizon_days=horizon_days,
        budget=budget,  # type: ignore[arg-type]
        progress=scaled,
        n_jobs=get_settings().n_jobs if n_jobs is None else n_jobs,
        max_train_cutoffs=max_train_cutoffs,
    )
    progress(0.9, "saving the model run")
    fingerprint = data_fingerprint(purchases, engine.url.render_as_string(hide_password=True))
    path = save_run(result, Path(models_dir), fingerprint)
    written, store_changed, warnings = 0, False, []
    if write_scores:
        progress(0.93, "scoring every customer with the new model")
        bundle = load_run(Path(models_dir), path.name)
        if store_signature(engine) != signature:
            # an ingest or undo landed while training: score the store as it is now, so
            # customers added meanwhile get a stored score too
            store_changed = True
            logger.warning(
                "the store changed while training: scoring the current store with run %s, "
                "which was trained on the store as it was when the job started",
                path.name,
            )
            purchases, cancellations = read_store(engine)
        score_as_of, moved = rescoring_as_of(purchases)
        warnings += [moved] if moved else []
        frame = score(bundle, purchases, cancellations, as_of=score_as_of)
        write_predictions(engine, frame, bundle.run_id, score_as_of, horizon_days)
        written = frame.height
    return {
        "run_id": path.name,
        "as_of": cutoff.isoformat(),
        "metrics": result.metrics,
        "predictions_written": written,
        "store_changed": store_changed,
        "warnings": warnings,
    }


def open_engine(url: str) -> sa.Engine:
    """Open (creating and migrating when needed) the store at ``url`` (``store.db.get_engine``)."""
    from retail_clv.store.db import get_engine

    return get_engine(url)


def reason_codes() -> tuple[str, ...]:
    """Return the reason codes ingestion can give a rejected row (``ingest.rules``)."""
    from retail_clv.ingest.rules import REASON_CODES

    return tuple(REASON_CODES)


def read_rejections(
    engine: sa.Engine, reason: str | None, limit: int, offset: int
) -> tuple[int, pl.DataFrame]:
    """Return the count of matching rejected rows and one page (``store.queries``)."""
    from retail_clv.store.queries import read_rejections as _read_rejections

    return _read_rejections(engine, reason, limit=limit, offset=offset)


def list_ingest_runs(engine: sa.Engine) -> list[dict[str, Any]]:
    """Return every ingest run, newest first (``store.runs.list_ingest_runs``)."""
    from retail_clv.store.runs import list_ingest_runs as _list_ingest_runs

    return _list_ingest_runs(engine)


def undo_ingest_run(engine: sa.Engine, run_id: int) -> dict[str, int]:
    """Take an ingest run's rows out of the store; rows deleted per table (``store.runs``)."""
    from retail_clv.store.runs import undo_ingest_run as _undo_ingest_run

    return _undo_ingest_run(engine, run_id, runs_listed_by="GET /ingest-runs")
