"""Time and memory of the customer bootstrap of a metric difference (``bootstrap_difference``).

Usage: python benchmarks/bench_bootstrap.py [--sizes 5714,50000] [--resamples 1000] [--with-scipy]

Synthetic heavy-tailed spend (gamma, shape 0.1) and two noisy predictions per size; times one
R² and one Gini comparison with ``metrics.bootstrap_difference`` (copy-count resampling), and
with ``--with-scipy`` the same comparison through ``scipy.stats.bootstrap`` (paired, vectorized,
which materialises each resample and re-sorts it). Peak memory is the growth of the process's
maximum resident set during each step (Linux ``ru_maxrss``), so only a step that raises the
peak shows a figure; run ``--with-scipy`` last for that reason. Best of 1: timings are noisy.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from _machine import describe
from retail_clv.models import metrics as M


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(step: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, float]:
    before = _peak_mb()
    start = time.perf_counter()
    step(*args, **kwargs)
    return time.perf_counter() - start, max(0.0, _peak_mb() - before)


def _scipy(metric: str, y: np.ndarray, a: np.ndarray, b: np.ndarray, n_resamples: int) -> Any:
    def along(y_s: np.ndarray, p_s: np.ndarray) -> np.ndarray:
        if metric == "r2":
            ss_tot = np.sum((y_s - y_s.mean(axis=-1, keepdims=True)) ** 2, axis=-1)
            return 1.0 - np.sum((y_s - p_s) ** 2, axis=-1) / ss_tot

        def area(score: np.ndarray) -> np.ndarray:
            ranks = stats.rankdata(score, method="average", axis=-1)
            return np.sum(y_s * (ranks - 0.5), axis=-1) / (n * np.sum(y_s, axis=-1)) - 0.5

        n = y_s.shape[-1]
        return area(p_s) / area(y_s)

    def delta(y_s: np.ndarray, a_s: np.ndarray, b_s: np.ndarray, axis: int = -1) -> Any:
        return along(y_s, a_s) - along(y_s, b_s)

    return stats.bootstrap(
        (y, a, b),
        delta,
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(0),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5714,50000", help="customers per comparison")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--with-scipy", action="store_true")
    args = ap.parse_args()
    print(f"Machine: {describe()}\n")
    print("| customers | method | metric | seconds | peak memory growth (MB) |")
    print("|---:|---|---|---:|---:|")
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = ["counts"] + (["scipy"] if args.with_scipy else [])
    for method in methods:
        for n in sizes:
            rng = np.random.default_rng(1)
            y = rng.gamma(0.1, 1000.0, n)
            a, b = y + rng.normal(0, 300, n), y + rng.normal(0, 600, n)
            for metric in ("r2", "gini"):
                if method == "counts":
                    seconds, mb = _measure(
                        M.bootstrap_difference, [(y, a, b)], metric, n_resamples=args.resamples
                    )
                else:
                    seconds, mb = _measure(_scipy, metric, y, a, b, args.resamples)
                print(f"| {n:,} | {method} | {metric} | {seconds:.2f} | {mb:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
