"""Time the features for 20 monthly cutoffs of the full Online Retail II (goal: <= 10 s).

Usage: python benchmarks/bench_features.py [PATH]   (default ../shared/data/online_retail_II.csv.gz)

Reads and cleans the raw file with the real ingest code (``clean_file``, not timed), then times
``customer_features`` and ``training_frame`` for 20 monthly cutoffs. Prints a markdown table
and the machine description. Timings on a shared machine are noisy: best of 3 is reported.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

from _machine import describe
from retail_clv.features import customer_features, training_frame
from retail_clv.ingest.pipeline import clean_file

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "online_retail_II.csv.gz"


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    t = time.perf_counter()
    clean = clean_file(path)
    purchases, cancellations = clean.purchases, clean.cancellations
    load_s = time.perf_counter() - t
    # 20 monthly cutoffs, 2010-02-01 .. 2011-09-01
    cutoffs = [dt.date(2010 + (m + 1) // 12, (m + 1) % 12 + 1, 1) for m in range(20)]
    rows = []
    for name, fn in (
        (
            "customer_features (20 cutoffs)",
            lambda: customer_features(purchases, cancellations, cutoffs),
        ),
        (
            "training_frame (features + 30-day targets)",
            lambda: training_frame(purchases, cancellations, cutoffs, 30),
        ),
    ):
        times = []
        for _ in range(3):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        rows.append((name, min(times), max(times), out.height))
    print(
        f"Input: {path.name}: {purchases.height:,} purchase lines, {cancellations.height:,} "
        f"cancellation lines (clean_file {load_s:.1f} s, not timed below)"
    )
    print(f"Cutoffs: {cutoffs[0]} .. {cutoffs[-1]} (20, monthly)\n")
    print("| step | best of 3 (s) | worst (s) | rows out | goal |")
    print("|---|---:|---:|---:|---|")
    for name, best, worst, n in rows:
        print(f"| {name} | {best:.2f} | {worst:.2f} | {n:,} | <= 10 s |")
    print(f"\nMachine: {describe()}")


if __name__ == "__main__":
    main()
