"""Synthetic retailer: an Online Retail II look-alike with known ground truth.

Public API::

    from retail_clv.synth import generate, GenerateReport, read_truth, achievable_r2

See :mod:`retail_clv.synth.process` for the customer process (as math),
:mod:`retail_clv.synth.generator` for the file format and the dirt rates, and
:mod:`retail_clv.synth.truth` for the ground truth and the "fraction of achievable R²".
"""

from retail_clv.synth.generator import DirtRates, GenerateReport, generate, truth_path_for
from retail_clv.synth.process import ProcessParams
from retail_clv.synth.truth import (
    AchievableR2,
    achievable_r2,
    fraction_of_achievable_r2,
    oracle_r2,
    read_truth,
)

__all__ = [
    "AchievableR2",
    "DirtRates",
    "GenerateReport",
    "ProcessParams",
    "achievable_r2",
    "fraction_of_achievable_r2",
    "generate",
    "oracle_r2",
    "read_truth",
    "truth_path_for",
]
