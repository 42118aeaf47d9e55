"""Benchmark of the synthetic retailer generator: rows/s and peak memory at several sizes.

Each size runs in a fresh subprocess so its peak RSS is its own. Output files go to a temporary
folder and are deleted. Usage::

    python benchmarks/bench_generate.py                     # 1M and 10M rows, csv
    python benchmarks/bench_generate.py --rows 1e6 --format parquet
    python benchmarks/bench_generate.py --rows 1e6 1e7 1e8  # 100M rows: ~8 GB of csv on disk

The machine is shared with other jobs while this runs: timings are noisy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _machine import describe

CHILD = r"""
import datetime as dt, json, resource, sys, time
from pathlib import Path
from retail_clv.synth import generate
customers, fmt, out = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
t0 = time.perf_counter()
r = generate(customers, dt.date(2009, 12, 1), 24, 1, out, fmt=fmt)
seconds = time.perf_counter() - t0
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"customers": customers, "rows": r.rows_written, "seconds": seconds,
                  "peak_rss_mb": rss_mb, "bytes": out.stat().st_size}))
"""


def run(customers: int, fmt: str, folder: Path) -> dict:
    out = folder / f"bench.{fmt}"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(customers), fmt, str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    for extra in (out, Path(f"{out}.truth.parquet")):
        extra.unlink(missing_ok=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, nargs="+", default=[1e6, 1e7])
    parser.add_argument("--format", default="csv", choices=["csv", "csv.gz", "parquet"])
    parser.add_argument("--dir", type=Path, default=None, help="Scratch folder (default: tmp).")
    args = parser.parse_args()
    print(f"Machine: {describe()}")
    print("Process: realistic, 24 months from 2009-12-01, seed 1; format", args.format)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        pilot = run(2000, args.format, Path(tmp))
        per_customer = pilot["rows"] / pilot["customers"]
        print(f"pilot: {pilot['rows']:,} rows from 2,000 customers ({per_customer:.1f} rows each)")
        header = f"{'target':>8} {'customers':>10} {'rows':>12} {'seconds':>8} {'rows/s':>10}"
        print(header + f" {'peak RSS MB':>11} {'file MB':>8}")
        for target in args.rows:
            r = run(max(1, round(target / per_customer)), args.format, Path(tmp))
            print(
                f"{target:>8.0e} {r['customers']:>10,} {r['rows']:>12,} {r['seconds']:>8.1f} "
                f"{r['rows'] / r['seconds']:>10,.0f} {r['peak_rss_mb']:>11.0f} "
                f"{r['bytes'] / 1e6:>8.0f}"
            )


if __name__ == "__main__":
    main()
