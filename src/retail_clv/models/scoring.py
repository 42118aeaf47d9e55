"""Score customers with a loaded model run, and make the result safe to hand out as CSV.

:func:`score` is pure (DataFrames in, DataFrame out): the CLI and the API read the store and
write the ``predictions`` table around it.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from retail_clv.errors import INGEST_HINT, NotEnoughDataError, count, days

if TYPE_CHECKING:
    from retail_clv.models.registry import ModelBundle

__all__ = [
    "CSV_COLUMNS",
    "SCORE_COLUMNS",
    "default_as_of",
    "check_training_as_of",
    "default_training_as_of",
    "scoring_as_of",
    "training_as_of",
    "late_as_of_note",
    "early_as_of_note",
    "as_of_notes",
    "feature_notes",
    "safe_csv_frame",
    "scale_note",
    "score",
    "csv_columns",
    "store_key",
    "to_csv_frame",
    "trained_on_this_store",
]

logger = logging.getLogger(__name__)

#: Columns of the predictions CSV (``clv predict``, API ``text/csv``), in this order.
CSV_COLUMNS: list[str] = [
    "customer_id",
    "predicted_spend_30d_model1",
    "predicted_spend_30d_model2",
    "predicted_products_30d",
    "r2_model1",
    "r2_model2",
]

#: Columns returned by :func:`score`, in this order.
SCORE_COLUMNS: list[str] = [
    "customer_id",
    "country",
    "predicted_spend_30d_model1",
    "predicted_spend_30d_model2",
    "predicted_products_30d",
    "r2_model1",
    "r2_model2",
]

# Spreadsheet programs treat a cell starting with one of these as a formula (OWASP "CSV
# injection"); tab and carriage return are included as OWASP recommends.
_FORMULA_START = r"^[=+\-@\t\r]"


def default_as_of(purchases: pl.DataFrame) -> dt.date:
    """Return the default scoring date: the day after the last purchase.

    Parameters
    ----------
    purchases : polars.DataFrame
        Valid purchase lines with an ``invoice_date`` column.

    Returns
    -------
    datetime.date
        Date of the last purchase plus one day, so every purchase is in the history.

    Raises
    ------
    NotEnoughDataError
        When there are no purchases.
    """
    if purchases.height == 0:
        raise NotEnoughDataError(f"the store holds no purchases: {INGEST_HINT}")
    last = purchases["invoice_date"].max()
    if isinstance(last, dt.datetime):
        last = last.date()
    if not isinstance(last, dt.date):
        raise NotEnoughDataError("the purchases have no usable invoice dates")
    return last + dt.timedelta(days=1)


def default_training_as_of(purchases: pl.DataFrame, horizon_days: int) -> dt.date:
    """Return the default training cutoff: the last purchase date minus the horizon.

    The held-out window ``[as_of, as_of + horizon)`` then lies inside the data. On Online
    Retail II (last purchase 2011-12-09) this gives 2011-11-09, the public evaluation cutoff.

    Parameters
    ----------
    purchases : polars.DataFrame
        Valid purchase lines with an ``invoice_date`` column.
    horizon_days : int
        Prediction horizon in days.

    Returns
    -------
    datetime.date
        ``date(last purchase) - horizon_days``.

    Raises
    ------
    NotEnoughDataError
        When there are no purchases.
    """
    return default_as_of(purchases) - dt.timedelta(days=1 + int(horizon_days))


def training_as_of(
    purchases: pl.DataFrame,
    as_of: dt.date | None,
    horizon_days: int,
    option: str,
    more: str,
    budget: str = "quick",
) -> dt.date:
    """Return the training cutoff: ``as_of``, or :func:`default_training_as_of`, checked.

    The one place ``clv train`` and ``POST /train`` choose and check their date; the
    parameters after ``horizon_days`` are :func:`check_training_as_of`'s. The default date is
    refused when the last purchase day stands :data:`~retail_clv.ingest.rules.ISOLATED_DAYS`
    or more after every other (a mistyped year, or one day of sales after a long closure):
    it would put the held-out window in the empty stretch before that day, and the run, which
    then cannot be judged, would become the model in use. An explicit ``as_of`` is the
    user's call.

    Raises
    ------
    NotEnoughDataError
        When there are no purchases, for the default date after an isolated last day, or as
        :func:`check_training_as_of`.
    """
    from retail_clv.ingest.rules import isolated_last_day

    cutoff = as_of or default_training_as_of(purchases, horizon_days)  # raises when empty
    dates = purchases.get_column("invoice_date")
    first, last = dates.min(), dates.max()
    assert isinstance(first, dt.datetime) and isinstance(last, dt.datetime)
    isolated = None if as_of else isolated_last_day(dates)
    if isolated is not None:
        _, before = isolated
        raise NotEnoughDataError(
            _isolated_day_refusal(
                dates,
                isolated,
                f"The default {option}, {cutoff}, would follow it into a stretch without "
                "purchases, and the run could not be judged",
                option,
            )
            + _before_isolated_day(first.date(), before, horizon_days, option, more, budget)
        )
    check_training_as_of(first.date(), last.date(), cutoff, horizon_days, option, more, budget)
    return cutoff


def scoring_as_of(purchases: pl.DataFrame, as_of: dt.date | None, option: str) -> dt.date:
    """Return the scoring date: ``as_of``, or :func:`default_as_of` when it means something.

    The default, the day after the last purchase, is refused when that last day stands
    :data:`~retail_clv.ingest.rules.ISOLATED_DAYS` or more after every other (a mistyped
    year): every customer would be scored as idle since the other purchases, and ``clv
    predict`` would write those scores over the stored ones. An explicit date is the user's.

    Raises
    ------
    NotEnoughDataError
        When there are no purchases, or for the default date after an isolated last day.
    """
    after_data = default_as_of(purchases)  # raises when empty
    if as_of is not None:
        return as_of
    refusal = isolated_scoring_note(purchases.get_column("invoice_date"), option)
    if refusal is not None:
        raise NotEnoughDataError(refusal)
    return after_data


def rescoring_as_of(purchases: pl.DataFrame) -> tuple[dt.date, str | None]:
    """Return the date to rescore every customer at after training, and a note if it moved.

    The day after the last purchase (:func:`default_as_of`), unless that last day stands
    :data:`~retail_clv.ingest.rules.ISOLATED_DAYS` or more after every other (a mistyped
    year?): then the day after the other purchases, so that the stored scores do not treat
    every customer as idle since them; the note says so. For ``POST /train`` and the demo,
    which rescore without asking for a date.
    """
    from retail_clv.ingest.rules import isolated_last_day

    isolated = isolated_last_day(purchases.get_column("invoice_date"))
    if isolated is None:
        return default_as_of(purchases), None
    last_day, before = isolated
    day_after = before + dt.timedelta(days=1)
    return day_after, (
        f"the scores were written as of {day_after}, the day after the purchases up to "
        f"{before}, not after the last purchase day, {last_day}, which stands "
        f"{(last_day - before).days} days after any other (a mistyped date?)"
    )


def isolated_scoring_note(dates: pl.Series, option: str) -> str | None:
    """Say what the default scoring date means after an isolated last purchase day, if any.

    :func:`scoring_as_of`'s refusal; the API, which scores on request, serves it as a warning
    beside scores asked for without an ``as_of``.
    """
    from retail_clv.ingest.rules import isolated_last_day

    isolated = isolated_last_day(dates)
    if isolated is None:
        return None
    last_day, before = isolated
    after_data, day_after = last_day + dt.timedelta(days=1), before + dt.timedelta(days=1)
    anyway = f" ({option} {after_data} scores as of that day anyway)" if option[:2] == "--" else ""
    refusal = _isolated_day_refusal(
        dates,
        isolated,
        f"Scored as of the day after it, {after_data}, every customer but that day's buyers "
        f"looks idle since {before}",
        option,
    )
    return (
        f"{refusal}, or pass {option} {day_after} to score as of the day after the other "
        f"purchases{anyway}"
    )


def _isolated_day_refusal(
    dates: pl.Series, isolated: tuple[dt.date, dt.date], effect: str, option: str
) -> str:
    """Word an isolated last purchase day, what the default date would do, and the fix."""
    last_day, before = isolated
    lines = int((dates.dt.date() == last_day).sum())
    undo = (
        "clv undo-ingest on the run that holds it, see clv ingest-runs"
        if option.startswith("--")
        else "POST /ingest-runs/{run_id}/undo on the run that holds it, see GET /ingest-runs"
    )
    return (
        f"the last purchase day, {last_day} ({count(lines, 'line')}), "
        f"stands {(last_day - before).days} days after any other ({before}): a mistyped "
        f"date? {effect}. Fix it ({undo}, then ingest the corrected file)"
    )


def _before_isolated_day(
    first: dt.date, before: dt.date, horizon_days: int, option: str, more: str, budget: str
) -> str:
    """Say which explicit settings train on the purchases up to ``before``, or that none does.

    The date offered is the default the store would have without its isolated last day,
    ``before`` minus the horizon, so that the held-out window ends with those purchases;
    when their history is too short for it, the quick budget or the longest shorter horizon
    is offered with its own date, only if it fits.
    """
    from retail_clv.models.training import history_needed, longest_horizon

    def as_of_for(h: int) -> dt.date:
        return before - dt.timedelta(days=h)

    suggestion = as_of_for(horizon_days)
    have = (suggestion - first).days
    needed = history_needed(budget, horizon_days)[1]  # type: ignore[arg-type]
    if have >= needed:
        return (
            f", or pass an {option} to train on the purchases before it anyway: {suggestion} "
            "holds out their last window"
        )
    cli = option.startswith("--")
    ways = []
    if budget != "quick" and have >= history_needed("quick", horizon_days)[1]:
        ways.append(
            f"--budget quick --as-of {suggestion}"
            if cli
            else f'budget "quick" with as_of {suggestion}'
        )
    shorter = longest_horizon(budget, horizon_days, first, as_of_for)  # type: ignore[arg-type]
    if shorter is not None:
        ways.append(
            f"--horizon {shorter} --as-of {as_of_for(shorter)}"
            if cli
            else f"horizon_days {shorter} with as_of {as_of_for(shorter)}"
        )
    tail = (
        f". Without that day, the purchases from {first} to {before} leave {have} days before "
        f"{suggestion}, and the {budget} budget with a {horizon_days}-day horizon needs {needed}"
    )
    if ways:
        return f"{tail}: to train on them anyway, pass {', or '.join(ways)}"
    return f"{tail}; {more}"


def check_training_as_of(
    first: dt.date,
    last: dt.date,
    as_of: dt.date,
    horizon_days: int,
    option: str,
    more: str,
    budget: str = "quick",
) -> None:
    """Refuse a training as-of date that leaves the training windows empty or too short.

    Parameters
    ----------
    first, last : datetime.date
        Dates of the store's first and last purchase.
    as_of : datetime.date
        The training cutoff asked for.
    horizon_days : int
        Window length.
    option : str
        How the caller names the date (``--as-of`` on the CLI, ``as_of`` in the API).
    more : str
        How the caller adds history (``clv ingest FILE``, ``POST /ingest``).
    budget : {"quick", "default"}, default "quick"
        The search budget, whose time-aware folds set how much history training needs
        (``training.history_needed``).

    Raises
    ------
    NotEnoughDataError
        When ``as_of`` is more than a day after the data, or leaves less history before it
        than the budget needs; the message says whether a later date inside the data would do.
    """
    from retail_clv.models.training import history_needed

    if as_of > last + dt.timedelta(days=1):
        raise NotEnoughDataError(
            f"{option} {as_of} is more than a day after the last purchase in the store "
            f"({last}): the newest training windows would run past the data, counting the days "
            "after it as days nobody bought; use an "
            f"{option} on or before {last + dt.timedelta(days=1)} (the day after the last "
            f"purchase trains on every window, with no held-out window to "
            f"evaluate; default: the last purchase date minus the horizon)"
        )
    _, needed = history_needed(budget, horizon_days)  # type: ignore[arg-type]
    have = (as_of - first).days
    if have < needed:
        earliest = first + dt.timedelta(days=needed)
        unjudged = (
            " (such a run is not evaluated: its held-out window runs past the data)"
            if earliest + dt.timedelta(days=horizon_days - 1) > last
            else ""
        )
        later = (
            f" or pass an {option} from {earliest} on{unjudged}"
            if earliest <= last + dt.timedelta(days=1)
            else ""
        )
        quick = history_needed("quick", horizon_days)[1]
        hint = (
            f" ({'--budget quick' if option.startswith('--') else 'the quick budget'} needs "
            f"only {quick} days)"
            if budget != "quick" and have >= quick
            else ""
        )
        held = f"has {have}" if have >= 0 else "comes before the first purchase"
        span = needed + horizon_days
        raise NotEnoughDataError(
            f"the store covers {first} to {last}: training with the {budget} budget and a "
            f"{horizon_days}-day horizon needs {needed} days of purchases before the as-of "
            f"date (about {span / 30.44:.1f} months of data in all, with the held-out window), "
            f"and {as_of} {held}{hint}; {more}{later}"
            + _shorter_horizon(first, last, horizon_days, option, budget)
        )


def _shorter_horizon(
    first: dt.date, last: dt.date, horizon_days: int, option: str, budget: str
) -> str:
    """Name the longest shorter horizon that trains on this history as of its default date."""
    from retail_clv.models.training import history_needed, longest_horizon

    span = (last - first).days
    if history_needed(budget, horizon_days)[1] <= span - horizon_days:  # type: ignore[arg-type]
        return ""  # the default date trains with this horizon: only the asked date is short
    fits = longest_horizon(
        budget,  # type: ignore[arg-type]
        horizon_days,
        first,
        lambda h: last - dt.timedelta(days=h),  # the default as-of date of that horizon
    )
    if fits is None:
        return ""
    name = "--horizon" if option.startswith("--") else "horizon_days"  # CLI option, API field
    return f"; or a {name} of {fits} days or less, as of the default date"


def late_as_of_note(as_of: dt.date, after_data: dt.date, option: str) -> str | None:
    """Say when a scoring date lies after the day after the last purchase (else ``None``)."""
    gap = (as_of - after_data).days
    if gap <= 0:
        return None
    return (
        f"{option} {as_of} is {days(gap)} after the day after the last purchase in the store "
        f"({after_data}): every customer is scored as if nothing was bought since"
    )


def early_as_of_note(as_of: dt.date, bundle: ModelBundle, option: str) -> str | None:
    """Say when a scoring date lies before the run's as-of date (else ``None``).

    The run's training windows end on its as-of date, so they cover what customers bought
    after an earlier scoring date: its scores there are fitted values, not a forecast.
    """
    run_as_of = bundle.metadata.get("as_of")
    if not run_as_of or as_of >= dt.date.fromisoformat(str(run_as_of)[:10]):
        return None
    return (
        f"{option} {as_of} is before the as-of date of model run {bundle.run_id} "
        f"({str(run_as_of)[:10]}): the run was trained on windows up to that date, which hold "
        f"what customers bought after {as_of}, so these scores are fitted values, not a "
        f"forecast; to measure a forecast from {as_of}, use clv backtest --cutoff {as_of}"
    )


def store_key(url: str) -> str:
    """Return what identifies the store of ``url``.

    The resolved file of a SQLite URL, so relative and absolute spellings agree; otherwise the
    URL without its password.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return "sqlite:" + str(Path(str(parsed.database)).expanduser().resolve())
    # not ``parsed.set(password=None)``: ``URL.set`` ignores None, so a recorded "***" never
    # matched the real password and every PostgreSQL store looked like another one
    user, host, port = parsed.username or "", parsed.host or "", parsed.port or ""
    return f"{parsed.drivername}://{user}@{host}:{port}/{parsed.database or ''}"


def trained_on_this_store(bundle: ModelBundle, url: str) -> bool:
    """Say whether the run was trained on the store at ``url`` (True when it did not record one)."""
    trained_on = (bundle.metadata.get("data_fingerprint") or {}).get("database_url")
    return not trained_on or store_key(str(trained_on)) == store_key(url)


def as_of_notes(
    as_of: dt.date,
    after_data: dt.date | None,
    bundle: ModelBundle,
    option: str,
    *,
    same_store: bool = True,
) -> list[str]:
    """Both date warnings of a scoring (:func:`late_as_of_note`, :func:`early_as_of_note`).

    ``after_data`` is the day after the store's last purchase (None: an empty store).
    ``same_store=False`` (the run was trained on another store) leaves out the fitted-values
    warning: the run never saw these customers' later purchases.
    """
    notes = [late_as_of_note(as_of, after_data, option) if after_data is not None else None]
    if same_store:
        notes.append(early_as_of_note(as_of, bundle, option))
    return [note for note in notes if note]


def feature_notes(features: pl.DataFrame, feature_names: list[str]) -> list[str]:
    """Return warnings about the scoring features that the user of the scores should see.

    Today one case: the BG/NBD + Gamma-Gamma fit failed for the scored customers (too few
    repeat buyers, or no convergence), so its features are null for everyone and the models
    impute them.

    Parameters
    ----------
    features : polars.DataFrame
        ``customer_features`` output at the scoring cutoff.
    feature_names : list of str
        The model run's inputs.

    Returns
    -------
    list of str
        Sentences, empty when there is nothing to say.
    """
    from retail_clv.features.bgnbd import BGNBD_COLUMNS

    used = [c for c in BGNBD_COLUMNS if c in feature_names and c in features.columns]
    if not used or features.height == 0:
        return []
    missing = [c for c in used if features.get_column(c).null_count() == features.height]
    if not missing:
        return []
    what = "BG/NBD + Gamma-Gamma" if missing == used else "Gamma-Gamma"
    return [
        f"The {what} model could not be fitted on these {count(features.height, 'customer')} "
        f"(too few repeat buyers, or no convergence): its features ({', '.join(missing)}) were "
        "imputed, so the scores rest on the other features and can differ noticeably from the same "
        "customers' scores within a larger customer base."
    ]


SCALE_FACTOR = 4.0
"""How many times more (or less) the scored customers may spend than the training population
before :func:`scale_note` warns (median or 90th percentile of yearly spend; within one store
the median moved by a factor of 1.7 over the two years of Online Retail II)."""


def scale_note(trained: dict[str, float | int] | None, features: pl.DataFrame) -> str | None:
    """Say when the scored customers spend on another scale than the run's training customers.

    A run records :func:`retail_clv.models.training.spend_levels` of its as-of population.
    Tree learners do not extrapolate beyond the spend levels they were trained on, and the
    run's R² was measured on its own store, so scores of a shop whose customers spend many
    times more (or less) than those deserve a warning: typically the active model of another
    shop scoring an upload (``/pipeline``, ``clv predict`` on another store).

    Parameters
    ----------
    trained : dict or None
        The run's ``config["spend_levels"]`` (None for runs saved before it was recorded: no
        check).
    features : polars.DataFrame
        The scored customers' features (one cutoff). Amounts are printed without a currency
        (the package does not know it).

    Returns
    -------
    str or None
        A sentence when the median or the 90th percentile of yearly spend of the customers
        active in the last year differs from the training population's by more than
        :data:`SCALE_FACTOR` in either direction, else ``None``.
    """
    from retail_clv.models.training import spend_levels

    if not trained or "spend_365d" not in features.columns or features.height == 0:
        return None
    here = spend_levels(features)
    ratios = []
    for key in ("spend_365d_median", "spend_365d_p90"):
        ours, theirs = float(here[key]), float(trained.get(key) or 0.0)
        if ours > 0 and theirs > 0:
            ratios.append(ours / theirs)
    if not ratios or all(1 / SCALE_FACTOR <= r <= SCALE_FACTOR for r in ratios):
        return None
    ratio = max(ratios, key=lambda r: max(r, 1 / r))
    how = f"{ratio:,.1f} times as much" if ratio > 1 else f"1/{1 / ratio:,.0f} as much"
    return (
        f"These customers spend on another scale than the ones the models were trained on: "
        f"a median of {here['spend_365d_median']:,.0f} a year (90th percentile "
        f"{here['spend_365d_p90']:,.0f}) against {float(trained['spend_365d_median']):,.0f} "
        f"({float(trained['spend_365d_p90']):,.0f}), {how}. The models do not extrapolate "
        "beyond the spend they learned from, and their R² was measured on the training store, "
        "not on these customers: train models on this data (clv train, or POST /train once it "
        "is ingested) before relying on these scores."
    )


def _run_notes(bundle: ModelBundle, cutoff: dt.date) -> list[str]:
    """Return the run's notes about these scores.

    Models clearly behind the baselines on the run's held-out window, and the run's
    ``unseen_season_note`` for the scored window (none for runs saved without their cutoffs).
    """
    from retail_clv.models.training import behind_baselines_notes, unseen_season_note

    notes = behind_baselines_notes(bundle.metadata.get("metrics") or {})
    config = bundle.metadata.get("config") or {}
    cutoffs = [dt.date.fromisoformat(c) for c in config.get("train_cutoffs") or []]
    horizon = config.get("horizon_days") or bundle.metadata.get("horizon_days")
    if cutoffs and horizon:
        note = unseen_season_note(cutoffs, cutoff, int(horizon))
        notes += [note] if note else []
    return notes


def score(
    bundle: ModelBundle,
    purchases: pl.DataFrame,
    cancellations: pl.DataFrame,
    as_of: dt.date | None = None,
    notes: list[str] | None = None,
) -> pl.DataFrame:
    """Predict next-horizon spend and products for every customer known before ``as_of``.

    Parameters
    ----------
    bundle : ModelBundle
        A loaded run (:func:`retail_clv.models.registry.load_run`).
    purchases, cancellations : polars.DataFrame
        Store content (``read_purchases`` / ``read_cancellations`` columns).
    as_of : datetime.date, optional
        Scoring date: only data strictly before it is used. Defaults to the day after the
        last purchase.
    notes : list of str, optional
        When given, :func:`feature_notes` about these features are appended to it for the
        caller to show; otherwise they are logged as warnings.

    Returns
    -------
    polars.DataFrame
        One row per customer with a purchase before ``as_of``, columns :data:`SCORE_COLUMNS`,
        sorted by ``customer_id``. ``r2_model1`` / ``r2_model2`` are the R² each model reached
        on its run's held-out window (not a per-customer quantity).

    Raises
    ------
    NotEnoughDataError
        When no customer has a purchase before ``as_of``.
    ModelMismatchError
        When the features lack a column the models need.
    """
    from retail_clv.features import customer_features

    cutoff = as_of or default_as_of(purchases)
    features = customer_features(purchases, cancellations, [cutoff])
    if features.height == 0:
        raise NotEnoughDataError(
            f"no customer has a purchase before {cutoff.isoformat()}: choose a later --as-of "
            f"or {INGEST_HINT}"
        )
    from retail_clv.models.training import same_predictions_note

    predictions = bundle.predict(features)
    found = feature_notes(features, bundle.feature_names) + _run_notes(bundle, cutoff)
    scale = scale_note((bundle.metadata.get("config") or {}).get("spend_levels"), features)
    same = same_predictions_note(predictions, bundle.model1, bundle.model2)
    found += [note for note in (scale, same) if note]
    if notes is not None:
        notes.extend(found)  # the caller shows them
    else:
        for note in found:
            logger.warning("%s", note)
    countries = features.select("customer_id", "country").unique("customer_id", keep="first")
    scored = predictions.join(countries, on="customer_id", how="left")
    logger.info(
        "scored %s as of %s with model run %s",
        count(scored.height, "customer"),
        cutoff,
        bundle.run_id,
    )
    return scored.select(SCORE_COLUMNS).sort("customer_id")


def safe_csv_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Neutralise spreadsheet formula injection in every text column.

    A text cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a
    leading ``'`` so spreadsheet programs show it as text instead of evaluating it.
    Numeric columns are left alone (a negative number is not a formula).

    Parameters
    ----------
    frame : polars.DataFrame
        Any frame about to be written as CSV.

    Returns
    -------
    polars.DataFrame
        The same frame with its text columns made safe.
    """
    text_columns = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if not text_columns:
        return frame
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(_FORMULA_START))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text_columns
    )


def csv_columns(horizon_days: int = 30) -> list[str]:
    """Name the CSV columns for a run's horizon: :data:`CSV_COLUMNS` at the default 30 days.

    A run trained with another horizon predicts another window, and its file says so
    (``predicted_spend_60d_model1``…); the predictions table and the JSON answers keep the
    fixed names and carry ``horizon_days`` beside them.
    """
    return [c.replace("_30d", f"_{horizon_days}d") for c in CSV_COLUMNS]


def to_csv_frame(scored: pl.DataFrame, horizon_days: int = 30) -> pl.DataFrame:
    """Select the CSV columns of a scored frame, in order, made formula-safe.

    Parameters
    ----------
    scored : polars.DataFrame
        Output of :func:`score` or :meth:`ModelBundle.predict`.
    horizon_days : int, default 30
        The run's horizon, written into the column names (see :func:`csv_columns`).

    Returns
    -------
    polars.DataFrame
        :func:`csv_columns` of the horizon, passed through :func:`safe_csv_frame`; spend and
        products rounded to 2 decimals (cents), R² to 4, for people reading the file (the
        predictions table and the JSON answers keep full precision).
    """
    rounded = scored.select(CSV_COLUMNS).with_columns(
        pl.col(c).round(4 if c.startswith("r2_") else 2)
        for c in CSV_COLUMNS
        if c.startswith(("predicted_", "r2_"))
    )
    names = dict(zip(CSV_COLUMNS, csv_columns(horizon_days), strict=True))
    return safe_csv_frame(rounded.rename(names))
