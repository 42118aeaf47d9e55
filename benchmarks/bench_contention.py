"""Training time on a busy machine: OpenMP threads that spin vs threads that sleep.

Usage:
    python benchmarks/bench_contention.py [--cutoff 2011-05-09] [--budget quick|default]
                                          [--quiet-only] [--data PATH] [--timeout 900]

XGBoost (and scikit-learn's compiled parts) run on OpenMP. By default an idle OpenMP thread
*spins* for a while before it sleeps, which is fast on an idle machine, but when another process
is using a core the spinning threads compete with the threads that have work to do. This
script runs the same backtest (``backtest(..., budget="quick")`` by default, at one cutoff, data
cleaned once by ``clean_file``) in a fresh process per scenario:

- quiet machine / one core kept busy by another process (a Python busy loop),
- ``OMP_WAIT_POLICY`` unset (the OpenMP runtime's default) / ``PASSIVE`` (idle threads sleep).

It prints the seconds of the backtest call (data loading excluded) and Model 2's R², which must
be the same in every scenario. Each child sets the policy before the OpenMP runtimes load (they
read it once, when XGBoost and scikit-learn are imported). The measured trade-off is in the
README: sleeping threads are much faster beside a busy core and slower on an idle machine, so
retail-clv leaves the choice to the user.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "online_retail_II.csv.gz"


def child(folder: Path, cutoff: dt.date, policy: str, budget: str) -> None:
    """Run one backtest on the cleaned frames in ``folder``; print a JSON line."""
    os.environ.pop("OMP_WAIT_POLICY", None)
    os.environ.pop("GOMP_SPINCOUNT", None)
    if policy.startswith("spin:"):  # libgomp: spin this many times, then sleep
        os.environ["GOMP_SPINCOUNT"] = policy.removeprefix("spin:")
    elif policy != "unset":
        os.environ["OMP_WAIT_POLICY"] = policy

    import polars as pl

    from retail_clv.models.backtest import backtest

    purchases = pl.read_parquet(folder / "purchases.parquet")
    cancellations = pl.read_parquet(folder / "cancellations.parquet")
    start = time.perf_counter()
    res = backtest(purchases, cancellations, cutoff, 30, budget)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    r2 = res["models"]["model2"]["r2"]
    print(json.dumps({"seconds": seconds, "r2_model2": r2}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cutoff", default="2011-05-09")
    ap.add_argument("--data", type=Path, default=DEFAULT)
    ap.add_argument("--budget", choices=["quick", "default"], default="quick")
    ap.add_argument("--quiet-only", action="store_true", help="skip the busy-core scenarios")
    ap.add_argument(
        "--policies",
        default="unset,PASSIVE",
        help="comma-separated: unset, PASSIVE, ACTIVE, or spin:N (libgomp's GOMP_SPINCOUNT=N)",
    )
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per scenario")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--policy", default="unset", help=argparse.SUPPRESS)
    args = ap.parse_args()
    cutoff = dt.date.fromisoformat(args.cutoff)
    if args.child:
        child(args.child, cutoff, args.policy, args.budget)
        return

    from _machine import describe
    from retail_clv.ingest.pipeline import clean_file

    print(f"Machine: {describe()}")
    clean = clean_file(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clean.purchases.write_parquet(folder / "purchases.parquet")
        clean.cancellations.write_parquet(folder / "cancellations.parquet")
        print(f"{args.budget} backtest at {cutoff}, one fresh process per scenario\n")
        print("| machine | OMP_WAIT_POLICY | backtest (s) | Model 2 R² |")
        print("|---|---|---:|---:|")
        for busy in (False,) if args.quiet_only else (False, True):
            for policy in args.policies.split(","):
                row = _scenario(folder, cutoff, busy, policy, args.budget, args.timeout)
                print(row, flush=True)


def _scenario(
    folder: Path, cutoff: dt.date, busy: bool, policy: str, budget: str, timeout: float
) -> str:
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    label = "one core busy" if busy else "quiet"
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(folder), "--cutoff", str(cutoff)]
            + ["--policy", policy, "--budget", budget],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return f"| {label} | {policy} | > {timeout:.0f} (stopped) | – |"
    finally:
        if loop is not None:
            loop.kill()
            loop.wait()
    row = json.loads(out.stdout.strip().splitlines()[-1])
    return f"| {label} | {policy} | {row['seconds']:.1f} | {row['r2_model2']:.4f} |"


if __name__ == "__main__":
    main()
