"""Process-wide state of the API: engine, active model, in-memory caches, job manager.

Built once by the lifespan of :func:`retail_clv.api.app.create_app` and reached by the routes
through :mod:`retail_clv.api.deps`. The model is loaded from the models directory only (after the
registry's checksum verification), never from a request.

Two caches keep the hot paths off the database:

* :class:`PredictionCache` holds the ``predictions`` table as ready-to-send JSON bytes per
  customer (``GET /customers/{id}/prediction`` is a dict lookup). It is reloaded when the table's
  signature (row count, latest ``created_at``) changes, checked every few seconds and right after
  this process writes predictions; a miss falls back to the indexed database lookup, so a row
  written by another process is served immediately. A score written by another run than the
  active one is served with a warning naming both runs.
* :class:`StoreCache` holds the store's purchases and cancellations frames for ``/predict`` and
  ``/customers``; it is dropped after an ingest and whenever ``ingest_runs`` changes.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl
import sqlalchemy as sa

from retail_clv.api import services
from retail_clv.api.jobs import JobManager
from retail_clv.config import Settings
from retail_clv.errors import (
    ModelMismatchError,
    ModelNotFoundError,
    NotEnoughDataError,
    RetailClvError,
    count,
)
from retail_clv.store import schema

logger = logging.getLogger(__name__)

NO_MODEL_MESSAGE = "No model trained yet: run clv train or POST /train"
_DERIVED_KEEP = 6


def finite_or_none(value: Any) -> Any:
    """Return ``value`` unless it is a NaN/infinite float, which becomes ``None`` (JSON null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def stale_score_note(scored_by: str, active: str | None) -> str:
    """Say that a stored score was written by another run than the one being served.

    Parameters
    ----------
    scored_by
        ``model_run_id`` of the stored score.
    active
        The run the API serves (``None`` when no model is loaded).

    Returns
    -------
    str
        The warning of ``GET /customers/{id}/prediction``.
    """
    if active is None:
        return (
            f"this score was written by model run {scored_by}; no model is loaded now (GET /ready "
            "says why), so it was not checked against the active one"
        )
    return (
        f"this score was written by model run {scored_by}; the active model is run {active}: "
        "run clv predict (or POST /train) to rescore"
    )


class PredictionCache:
    """The ``predictions`` table as pre-serialised JSON bodies keyed by customer id.

    Each customer's stored score is kept as the JSON object it is served as, without its
    closing ``warnings`` member; :meth:`get` adds ``"warnings":[]`` when the score was written by
    the active run and a note naming both runs otherwise (:func:`stale_score_note`), so that
    scores written by an earlier run say so as soon as the API follows another one.
    """

    _FRESH = b',"warnings":[]}'

    def __init__(self) -> None:
        self._heads: dict[str, tuple[str, bytes]] = {}
        self._signature: tuple[Any, ...] | None = None
        self._active: str | None = None
        self._stale_tails: dict[tuple[str, str | None], bytes] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._heads)

    def set_active_run(self, run_id: str | None) -> None:
        """Record the run the API serves (called on every model (re)load)."""
        if run_id != self._active:
            self._stale_tails = {}
            self._active = run_id

    def get(self, customer_id: str) -> bytes | None:
        """Return the JSON body of a customer's stored prediction, or ``None``."""
        entry = self._heads.get(customer_id)
        if entry is None:
            return None
        scored_by, head = entry
        active = self._active
        if scored_by == active:
            return head + self._FRESH
        tail = self._stale_tails.get((scored_by, active))
        if tail is None:
            note = stale_score_note(scored_by, active)
            tail = b',"warnings":' + json.dumps([note]).encode() + b"}"
            self._stale_tails[(scored_by, active)] = tail
        return head + tail

    @staticmethod
    def head(row: dict[str, Any]) -> tuple[str, bytes]:
        """Serialise one stored score as ``GET /customers/{id}/prediction`` serves it.

        Returns the row's run id and the JSON object without its ``warnings`` member and its
        closing brace.
        """
        as_of = row["as_of"]
        body = json.dumps(
            {
                "customer_id": row["customer_id"],
                "predicted_spend_30d_model1": finite_or_none(row["predicted_spend_30d_model1"]),
                "predicted_spend_30d_model2": finite_or_none(row["predicted_spend_30d_model2"]),
                "predicted_products_30d": finite_or_none(row["predicted_products_30d"]),
                "as_of": as_of.isoformat() if isinstance(as_of, date) else str(as_of),
                "horizon_days": row["horizon_days"],
                "model_run_id": row["model_run_id"],
            },
            separators=(",", ":"),
        ).encode()
        return str(row["model_run_id"]), body[:-1]

    @staticmethod
    def signature(engine: sa.Engine) -> tuple[Any, ...]:
        """Return a cheap fingerprint of the table: row count and latest ``created_at``."""
        table = schema.predictions
        query = sa.select(
            sa.func.count(), sa.func.max(table.c.created_at), sa.func.max(table.c.model_run_id)
        )
        with engine.connect() as conn:
            row = conn.execute(query).one()
        return tuple(row)

    def refresh(self, engine: sa.Engine, force: bool = False) -> bool:
        """Reload the whole table when its signature changed (or ``force``); return if reloaded."""
        with self._lock:
            signature = self.signature(engine)
            if not force and signature == self._signature:
                return False
            rows = services.read_all_predictions(engine).to_dicts()
            self._heads = {row["customer_id"]: self.head(row) for row in rows}
            self._signature = signature
        logger.info("prediction cache loaded: %s", count(len(rows), "customer"))
        return True

    def lookup_database(self, engine: sa.Engine, customer_id: str) -> bytes | None:
        """Read one customer's row with the primary-key index (cache miss path)."""
        row = services.read_one_prediction(engine, customer_id)
        if row is None:
            return None
        self._heads[customer_id] = self.head(row)
        return self.get(customer_id)


@dataclass
class StoreFrames:
    """The store's purchases and cancellations, the default scoring date, derived tables.

    Features and scores depend on the whole population (e.g. ``country_freq``), so they are
    computed on the full store for a cutoff and kept (a few cutoffs, newest used last) for as
    long as this snapshot of the store is current.
    """

    purchases: pl.DataFrame
    cancellations: pl.DataFrame
    default_as_of: date | None
    #: ``scoring.isolated_scoring_note`` of the purchases (a mistyped last date?), if any
    isolated_note: str | None = None
    _derived: OrderedDict[tuple[str, ...], pl.DataFrame] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _cached(self, key: tuple[str, ...], build: Callable[[], pl.DataFrame]) -> pl.DataFrame:
        with self._lock:
            if key in self._derived:
                self._derived.move_to_end(key)
                return self._derived[key]
            value = build()
            self._derived[key] = value
            while len(self._derived) > _DERIVED_KEEP:
                self._derived.popitem(last=False)
            return value

    def features(self, cutoff: date) -> pl.DataFrame:
        """Return every customer's features as of ``cutoff`` (computed once per snapshot)."""
        return self._cached(
            ("features", cutoff.isoformat()),
            lambda: services.customer_features(self.purchases, self.cancellations, [cutoff]),
        )

    def scores(self, bundle: Any, cutoff: date) -> pl.DataFrame:
        """Return every customer's scores by ``bundle`` as of ``cutoff`` (empty when none)."""

        def build() -> pl.DataFrame:
            try:
                return services.score(bundle, self.purchases, self.cancellations, as_of=cutoff)
            except NotEnoughDataError:
                return pl.DataFrame(schema={"customer_id": pl.Utf8})

        return self._cached(("scores", str(bundle.run_id), cutoff.isoformat()), build)


class StoreCache:
    """Keep the store's frames in memory between requests; reload when the store changes."""

    def __init__(self) -> None:
        self._frames: StoreFrames | None = None
        self._signature: tuple[Any, ...] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def signature(engine: sa.Engine) -> tuple[Any, ...]:
        """Return a cheap fingerprint of the store (``store.runs.store_signature``)."""
        return services.store_signature(engine)

    def invalidate(self) -> None:
        """Forget the cached frames (called after this process ingests)."""
        with self._lock:
            self._frames = None
            self._signature = None

    def get(self, engine: sa.Engine) -> StoreFrames:
        """Return the store's frames, reading them when absent or when the store changed."""
        signature = self.signature(engine)
        with self._lock:
            if self._frames is not None and signature == self._signature:
                return self._frames
            from retail_clv.models.scoring import default_as_of, isolated_scoring_note

            purchases, cancellations = services.read_store(engine)
            after_data = default_as_of(purchases) if purchases.height else None
            self._frames = StoreFrames(
                purchases,
                cancellations,
                after_data,
                isolated_scoring_note(purchases.get_column("invoice_date"), "as_of"),
            )
            self._signature = signature
            logger.info(
                "store cache loaded: %d purchase lines, %d cancellations",
                purchases.height,
                cancellations.height,
            )
            return self._frames


class ApiState:
    """Everything the routes share inside one server process.

    Parameters
    ----------
    settings
        The settings the app was created with.
    engine
        The store's engine (pooled connections).
    """

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings = settings
        self.engine = engine
        self._bundle: Any | None = None
        self._pointer: str | None = None  # the run ``latest`` named at the last (re)load
        self.model_error: str = NO_MODEL_MESSAGE
        self.predictions = PredictionCache()
        self.store = StoreCache()
        self.jobs = JobManager()
        self._model_lock = threading.Lock()

    @property
    def bundle(self) -> Any | None:
        """The active model run (``None`` with :attr:`model_error` set when none is loaded)."""
        return self._bundle

    def follow_latest(self) -> None:
        """Reload the model when ``models/latest`` names another run than the loaded one.

        Called from the API's background refresher every few seconds (in a worker thread,
        never on the event loop), so a run trained with ``clv train`` while the API runs, or
        a pointer moved back to an earlier run, is served within seconds by every endpoint.
        When the run it now names cannot be loaded (tampered, not a run), the loaded model
        keeps being served and the reason is logged; it is tried again when the pointer
        changes or after ``POST /train``.
        """
        if services.latest_run_id(self.settings.models_dir) == self._pointer:
            return
        with self._model_lock:  # a training job may have reloaded meanwhile
            pointer = services.latest_run_id(self.settings.models_dir)
            if pointer != self._pointer:
                logger.info("models/latest changed (now %s): reloading", pointer)
                self._reload_locked(keep_on_failure=True)

    def reload_model(self) -> None:
        """(Re)load the active model run from the models directory; keep the reason on failure."""
        with self._model_lock:
            self._reload_locked()

    def _reload_locked(self, keep_on_failure: bool = False) -> None:
        self._pointer = services.latest_run_id(self.settings.models_dir)
        try:
            bundle = services.load_bundle(self.settings.models_dir)
        except (ModelNotFoundError, ModelMismatchError, RetailClvError) as exc:
            if keep_on_failure and self._bundle is not None:
                logger.error(
                    "models/latest cannot be loaded (%s); still serving model %s",
                    exc,
                    self._bundle.run_id,
                )
                return
            if isinstance(exc, ModelNotFoundError):
                self._bundle, self.model_error = None, NO_MODEL_MESSAGE
                logger.warning("no model loaded: %s", exc)
            else:
                self._bundle, self.model_error = None, f"Model cannot be loaded: {exc}"
                logger.error("model cannot be loaded: %s", exc)
            self.predictions.set_active_run(None)
            return
        self._bundle, self.model_error = bundle, ""
        self.predictions.set_active_run(str(bundle.run_id))
        logger.info("model %s loaded", bundle.run_id)

    def warm_up(self) -> None:
        """Load the store and score it with the active model, so first requests are fast."""
        bundle = self.bundle
        if bundle is None:
            return
        try:
            frames = self.store.get(self.engine)
            if frames.default_as_of is not None:
                frames.scores(bundle, frames.default_as_of)
        except Exception as exc:  # noqa: BLE001 - a warm-up failure must not stop the server
            logger.warning("warm-up skipped: %s", exc)

    def require_bundle(self) -> Any:
        """Return the active model bundle or raise :class:`ModelNotFoundError` (503)."""
        bundle = self.bundle
        if bundle is None:
            raise ModelNotFoundError(self.model_error or NO_MODEL_MESSAGE)
        return bundle
