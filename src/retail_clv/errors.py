"""Domain errors raised by the core; the CLI and the API translate them for the user.

Each carries a message written for the person who has to fix the input.
"""

from __future__ import annotations

#: What to do when the store lacks data: the tail of every "no data" message.
INGEST_HINT = "ingest data first: clv ingest FILE"


def days(n: int) -> str:
    """``"1 day"``, ``"30 days"``: a day count as the messages write it."""
    return f"{n} day" if n == 1 else f"{n} days"


def count(n: int, thing: str) -> str:
    """``"1 blank row"``, ``"1,234 blank rows"``: a count of things as the messages write it."""
    return f"{n:,} {thing}" + ("" if n == 1 else "s")


class RetailClvError(Exception):
    """Base class of every error retail-clv raises on purpose."""


class InputFileError(RetailClvError):
    """A raw input file cannot be read: empty, binary, wrong type, bad encoding..."""


class SchemaError(RetailClvError):
    """A raw input file lacks a required column, or a column mapping is invalid."""


class StoreError(RetailClvError):
    """The store cannot be opened, migrated or written."""


class UnknownIngestRunError(StoreError):
    """An ingest run asked for (to undo it) is not in the store."""


class IngestRunConflictError(StoreError):
    """An ingest run cannot be undone now: already undone, unfinished, or behind later runs.

    Later runs that skipped rows as duplicates must be undone first: the rows they skipped may
    be this run's.
    """


class NotEnoughDataError(RetailClvError):
    """There is too little history to compute features or train a model."""


class TrainingDivergedError(RetailClvError):
    """A learner's fit ran away: its predictions are not finite numbers."""


class SettingError(RetailClvError):
    """An option or setting has a value the run cannot use."""


class ModelNotFoundError(RetailClvError):
    """No trained model run exists where one was asked for."""


class ModelMismatchError(RetailClvError):
    """A model artifact fails its checksum, version or config check."""
