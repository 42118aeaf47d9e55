from __future__ import annotations

from pathlib import Path

import pytest

from retail_clv.models.card import (
    PLOT_FILES,
    metrics_rows,
    render_model_card,
    write_model_card,
)
from tests.models._toy import toy_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _metadata(metrics: dict | None = None) -> dict:
    return {
        "run_id": "20261127T150102Z-3fa9c1",
        "trained_at": "2026-11-27T15:01:02Z",
        "as_of": "2011-11-09",
        "horizon_days": 30,
        "feature_names": ["recency_days", "monetary"],
        "metrics": toy_metrics() if metrics is None else metrics,
        "feature_importance": [
            {"feature": "recency_days", "importance": 0.25},
            {"feature": "monetary", "importance": 0.75},
        ],
        "best_params": {"model2": {"xgb__max_depth": 4}},
        "cv_scores": {"model2": [0.61, 0.64]},
        "config": {"budget": "quick"},
        "data_fingerprint": {"database_url": "sqlite:///a|b.db", "n_purchases": 805549},
        "git": {"commit": "abc123", "dirty": True},
        "library_versions": {"python": "3.11.7", "scikit-learn": "1.9.1"},
    }


def test_metrics_rows_keep_display_order_and_skip_absent_entries() -> None:
    metrics = toy_metrics()
    del metrics["baselines"]["run_rate"]
    rows = metrics_rows(metrics)
    assert [r["key"] for r in rows] == ["model1", "model2", "mean", "bgnbd_gg"]
    assert rows[1]["r2"] == 0.67 and rows[1]["top10_capture"] == 0.6
    assert metrics_rows(None) == [] and metrics_rows({}) == []


def test_card_has_run_info_metrics_table_calibration_params_and_limitations() -> None:
    text = render_model_card(_metadata())
    assert text.startswith("# Model card — run `20261127T150102Z-3fa9c1`")
    assert "held-out window is [2011-11-09, 2011-12-09)" in text
    assert "- Search budget: quick" in text
    assert "abc123 (uncommitted changes)" in text
    assert "- n_purchases: 805549" in text
    assert "sqlite:///a\\|b.db" in text  # a pipe cannot break the Markdown
    assert "| Model | R² | MAE | RMSE | Spearman | Gini | Top-10% capture |" in text
    assert "| Model 2 | 0.670 | 10.000 | 20.000 | 0.600 | 0.700 | 0.600 |" in text
    # the BG/NBD R² is NaN in the metrics: shown as n/a, never as a number
    assert "| Baseline: BG/NBD + Gamma-Gamma | n/a | 10.000 |" in text
    assert "40 customers in the population" in text
    assert "| 10 | 4 | 110.00 | 95.00 |" in text  # model2, decile 10
    assert '"xgb__max_depth": 4' in text
    assert "## Known limitations" in text
    # feature importance sorted by importance
    assert text.index("`monetary` | 0.7500") < text.index("`recency_days` | 0.2500")
    # no plot given, no image link
    assert "![" not in text


def test_failed_baseline_is_shown_as_failed_with_its_reason() -> None:
    metrics = toy_metrics()
    metrics["buyer_share"] = 0.26
    metrics["baselines"]["bgnbd_gg"] = {"failed": True, "reason": "too few repeat buyers"}
    rows = metrics_rows(metrics)
    assert rows[-1]["label"] == "Baseline: BG/NBD + Gamma-Gamma (failed)"
    assert rows[-1]["r2"] is None and rows[-1]["failed_reason"] == "too few repeat buyers"
    text = render_model_card(_metadata(metrics))
    assert "| Baseline: BG/NBD + Gamma-Gamma (failed) | n/a | n/a |" in text
    assert "Baseline: BG/NBD + Gamma-Gamma (failed): too few repeat buyers" in text
    assert "40 customers in the population, 26% of whom bought" in text
    one = render_model_card(_metadata({**metrics, "n_customers": 1}))
    assert "(30 days, 1 customer in the population" in one


def test_card_without_holdout_says_not_evaluated() -> None:
    text = render_model_card(_metadata(metrics={}))
    assert "Not evaluated" in text
    assert "| Model | R²" not in text
    assert "## Decile calibration" not in text


def test_write_model_card_draws_every_plot_and_links_it(tmp_path: Path) -> None:
    card = write_model_card(_metadata(), tmp_path)
    text = card.read_text()
    for name in PLOT_FILES.values():
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC
        assert f"]({name})" in text


@pytest.mark.parametrize(
    ("drop", "missing"),
    [
        ("calibration", "calibration.png"),
        ("gain_curve", "gain_curve.png"),
    ],
)
def test_plots_are_skipped_when_their_data_is_absent(tmp_path: Path, drop, missing) -> None:
    metrics = toy_metrics()
    del metrics[drop]
    card = write_model_card(_metadata(metrics), tmp_path)
    assert not (tmp_path / missing).exists()
    assert missing not in card.read_text()
    assert (tmp_path / "model_vs_baseline.png").exists()


def test_card_and_gap_rows_show_each_comparison_with_its_interval() -> None:
    from retail_clv.models.card import gap_rows

    gap = {"delta": 0.0784, "low": -0.0541, "high": 0.1502, "share_above_zero": 0.8}
    gini = {"delta": 0.022, "low": 0.016, "high": 0.028, "share_above_zero": 1.0}
    metrics = {**toy_metrics(), "vs_baselines": {"model2": {"run_rate": {"r2": gap, "gini": gini}}}}
    assert gap_rows(metrics) == [
        ("Model 2 − run-rate", "+0.078 [-0.054, +0.150]", "+0.022 [+0.016, +0.028]")
    ]
    text = render_model_card(_metadata(metrics))
    assert "| Comparison | R² difference | Gini difference |" in text
    assert "| Model 2 − run-rate | +0.078 [-0.054, +0.150] | +0.022 [+0.016, +0.028] |" in text
    # runs saved before the intervals existed have no block and no section
    assert gap_rows(toy_metrics()) == [] and gap_rows(None) == []
    assert "Comparison" not in render_model_card(_metadata())


def test_products_lines_name_the_model_and_its_baselines() -> None:
    from retail_clv.models.card import products_lines

    metrics = {
        "models": {"products": {"mae": 8.9, "spearman": 0.457, "r2": 0.511}},
        "products_baselines": {
            "mean": {"mae": 12.0, "spearman": None, "r2": -0.001},
            "last_window": {"mae": 9.5, "spearman": 0.4, "r2": 0.3},
        },
    }
    assert products_lines(metrics) == [
        "Products model: mae 8.900, spearman 0.457, r2 0.511",
        "Products baselines: mean (mae 12.000, spearman n/a, r2 -0.001); "
        "last window (mae 9.500, spearman 0.400, r2 0.300)",
    ]
    assert products_lines({"models": {}}) == []


def test_run_warnings_are_in_the_card_even_without_held_out_metrics() -> None:
    from retail_clv.models.card import render_model_card

    text = render_model_card(
        {
            "run_id": "r",
            "as_of": "2010-11-30",
            "horizon_days": 30,
            "metrics": {"evaluated": False, "warnings": ["30 of the 30 days of [...] fall"]},
        }
    )
    assert "**Warning:** 30 of the 30 days of [...] fall" in text


def test_a_run_without_a_search_does_not_claim_one() -> None:
    """The quick budget runs no search: its card said "Chosen by the ... search:" over {}."""
    metadata = {**_metadata(), "best_params": {"model1": {}, "model2": {}}}
    text = render_model_card(metadata)
    assert "Chosen by the time-aware randomized search" not in text
    assert "No search was run (budget quick)" in text
    assert "Chosen by the time-aware randomized search:" in render_model_card(_metadata())


def test_the_card_sets_the_total_spend_beside_each_models_sum() -> None:
    totals = {"actual": 20000.0, "model1": 13400.0, "model2": 15800.0, "run_rate": 9400.0}
    text = render_model_card({**_metadata(), "metrics": {**toy_metrics(), "totals": totals}})
    assert (
        "Total spend in the window: 20,000; sum of the predictions: Model 1 13,400 (0.67×), "
        "Model 2 15,800 (0.79×), run-rate 9,400 (0.47×)."
    ) in text  # BG/NBD's sum is absent when its fit failed
    assert "Total spend in the window" not in render_model_card(_metadata())


def test_a_one_day_horizon_is_one_day() -> None:
    text = render_model_card({**_metadata(), "horizon_days": 1})
    assert "- Horizon: 1 day\n" in text
    assert "- Horizon: 30 days\n" in render_model_card(_metadata())


def test_the_card_gives_the_training_rows_the_training_time_grows_with() -> None:
    metadata = _metadata()
    metadata["config"] = {
        "budget": "quick",
        "train_rows": 88513,
        "train_cutoffs": [f"2010-{m:02d}-01" for m in range(1, 13)],
    }
    text = render_model_card(metadata)
    assert (
        "- Training rows: 88,513 (customer × cutoff) from 12 training cutoffs (all history)\n"
        in text
    )
    assert text.index("## Training data") < text.index("- Training rows")
    assert "Training rows" not in render_model_card(_metadata())  # older runs: not recorded
    metadata["config"]["max_train_cutoffs"] = 12
    assert "from 12 training cutoffs (at most 12, the newest: max_train_cutoffs)\n" in (
        render_model_card(metadata)
    )
