"""Time-aware cross-validation over cutoffs, and the randomized search built on it.

Training rows are (customer, cutoff) pairs. Rows of one cutoff share a target window
``[cutoff, cutoff + horizon)``, and windows of close cutoffs overlap, so a random split would
train on the very days it is tested on. :class:`CutoffSplit` splits by cutoff instead:

* the distinct cutoffs are cut into ``n_splits + 1`` contiguous blocks (oldest first);
* fold ``i`` tests on block ``i`` (``i >= 1``) and trains only on rows whose window ends on or
  before the block's first cutoff (``cutoff + horizon <= min(test cutoffs)``), i.e. a forward
  split with a purge gap of one horizon.

The row's cutoff is passed as ``groups`` (int day numbers or ``datetime64``); the training code
also stores it as the pandas index of ``X`` so that the stacking ensemble can rebuild the same
kind of split inside each search fold (see :mod:`retail_clv.models.estimators`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator

from retail_clv.errors import NotEnoughDataError


def cutoff_days(groups: Any) -> np.ndarray:
    """Convert cutoff labels (dates, ``datetime64`` or int day numbers) to int day numbers.

    Parameters
    ----------
    groups : array-like
        One cutoff label per row.

    Returns
    -------
    numpy.ndarray
        ``int64`` days since 1970-01-01.
    """
    arr = np.asarray(groups)
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64)
    return np.asarray(pd.to_datetime(arr).values.astype("datetime64[D]").astype(np.int64))


class CutoffSplit(BaseCrossValidator):
    """Forward, purged cross-validation over groups of cutoffs.

    Parameters
    ----------
    n_splits : int, default 3
        Number of folds (the oldest block of cutoffs is only ever trained on).
    horizon_days : int, default 30
        Length of every target window; a training row is kept only if its window ends on or
        before the first cutoff of the test block.
    max_test_cutoffs : int or None, default None
        When set, each test block keeps only its latest ``max_test_cutoffs`` cutoffs (cheaper
        scoring; the training side is unchanged).
    """

    def __init__(
        self, n_splits: int = 3, horizon_days: int = 30, max_test_cutoffs: int | None = None
    ) -> None:
        self.n_splits = n_splits
        self.horizon_days = horizon_days
        self.max_test_cutoffs = max_test_cutoffs

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Return the number of folds.

        Parameters
        ----------
        X, y, groups : object
            Ignored, present for API compatibility.

        Returns
        -------
        int
            ``n_splits``.
        """
        return self.n_splits

    def split(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_idx, test_idx)`` for each fold, oldest test block first.

        Parameters
        ----------
        X : array-like
            Rows (only their number is used, or the pandas index when ``groups`` is None).
        y : object
            Ignored.
        groups : array-like, optional
            Cutoff of each row; defaults to ``X.index`` for a pandas frame.

        Yields
        ------
        tuple of numpy.ndarray
            Train and test row indices.

        Raises
        ------
        NotEnoughDataError
            When there are too few distinct cutoffs or a fold would have no training row.
        """
        if groups is None:
            if not isinstance(X, pd.DataFrame | pd.Series):
                raise NotEnoughDataError("CutoffSplit needs groups (the cutoff of every row)")
            groups = X.index.to_numpy()
        days = cutoff_days(groups)
        unique = np.unique(days)
        if unique.size < self.n_splits + 1:
            raise NotEnoughDataError(
                f"time-aware CV needs at least {self.n_splits + 1} distinct cutoffs, "
                f"got {unique.size}; add history or use fewer folds"
            )
        blocks = np.array_split(unique, self.n_splits + 1)
        for block in blocks[1:]:
            test_cuts = block if self.max_test_cutoffs is None else block[-self.max_test_cutoffs :]
            train_idx = np.flatnonzero(days + self.horizon_days <= block.min())
            test_idx = np.flatnonzero(np.isin(days, test_cuts))
            if train_idx.size == 0:
                raise NotEnoughDataError(
                    "a time-aware fold has no training row whose window ends before its test "
                    "cutoffs; add history, use fewer folds or a shorter horizon"
                )
            yield train_idx, test_idx

    def _iter_test_indices(self, X: Any = None, y: Any = None, groups: Any = None) -> Any:
        raise NotImplementedError  # split() is overridden; kept for the abstract base class
