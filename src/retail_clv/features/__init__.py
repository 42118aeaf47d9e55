"""Customer features as of cutoffs (pure Polars), prediction targets and training frames."""

from retail_clv.features.build import (
    CANCELLATION_COLUMNS,
    FEATURE_COLUMNS,
    FEATURE_VERSION,
    PURCHASE_COLUMNS,
    WINDOWS,
    customer_features,
    normalize_cutoffs,
)
from retail_clv.features.targets import targets, training_frame

__all__ = [
    "CANCELLATION_COLUMNS",
    "FEATURE_COLUMNS",
    "FEATURE_VERSION",
    "PURCHASE_COLUMNS",
    "WINDOWS",
    "customer_features",
    "normalize_cutoffs",
    "targets",
    "training_frame",
]
