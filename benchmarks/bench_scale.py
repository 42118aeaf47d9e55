"""Benchmark: the whole CLI on a synthetic shop larger than Online Retail II (time and memory).

Usage::

    python benchmarks/bench_scale.py                              # 28,000 customers, 24 months
    python benchmarks/bench_scale.py --customers 70000 --months 36 --budget quick
    python benchmarks/bench_scale.py --max-train-cutoffs 13     # also a capped training run

Generates a shop with ``clv generate`` (same realistic process as the demo, with its dirt), then
runs ``clv ingest``, ``clv train --budget quick`` (or ``--budget default``) and ``clv predict``,
each as its own child process on a fresh SQLite store and models folder in a temporary
directory. With ``--max-train-cutoffs N`` a second ``clv train`` keeps only the newest N training
cutoffs (the option a big shop can use to bound training time and memory), and ``clv predict``
scores with that capped run. For each step it prints the wall time, the child's CPU time and
its peak resident memory (``os.wait4``'s ``ru_maxrss``, per process), and the training rows each
run recorded (customers × training cutoffs, what training time grows with). The machine is
described and the load average is printed before each step: timings on a shared machine are
noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import describe
from retail_clv.models.registry import resolve_run_dir

CLV = [sys.executable, "-m", "retail_clv"]


def run_step(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run one CLI command as a child process; return wall, CPU and peak RSS (MB)."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile(mode="w+") as stderr:  # a pipe could fill up and block
        start = time.perf_counter()
        child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            stderr.seek(0)
            raise SystemExit(f"{' '.join(argv[3:])} failed:\n{stderr.read()}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "load": load,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=28_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--budget", choices=["quick", "default"], default="quick")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-train-cutoffs", type=int, default=None)
    args = parser.parse_args()

    print(describe())
    with tempfile.TemporaryDirectory(prefix="clv-scale-") as tmp:
        root = Path(tmp)
        env = {
            **os.environ,
            "CLV_MAX_TRAIN_CUTOFFS": "",  # blank is unset, and wins over a .env file's value
            "CLV_DATABASE_URL": f"sqlite:///{root / 'shop.db'}",
            "CLV_MODELS_DIR": str(root / "models"),
            "CLV_OUTPUT_DIR": str(root / "output"),
        }
        raw = root / "shop.csv"
        gen = [
            *CLV,
            "generate",
            "--customers",
            str(args.customers),
            "--months",
            str(args.months),
            "--seed",
            str(args.seed),
            "--out",
            str(raw),
        ]
        steps = {"generate": run_step(gen, env)}
        with raw.open("rb") as handle:
            rows = sum(1 for _ in handle) - 1
        print(
            f"shop: {args.customers:,} customers with an id, {args.months} months, "
            f"{rows:,} raw rows ({raw.stat().st_size / 1e6:,.0f} MB CSV), seed {args.seed}\n"
        )
        steps["ingest"] = run_step([*CLV, "ingest", str(raw)], env)
        trains = [["--budget", args.budget]]
        if args.max_train_cutoffs is not None:
            trains.append([*trains[0], "--max-train-cutoffs", str(args.max_train_cutoffs)])
        configs = {}
        for options in trains:
            name = f"train {' '.join(options)}"
            steps[name] = run_step([*CLV, "train", *options], env)
            latest = resolve_run_dir(root / "models", "latest") / "metadata.json"
            configs[name] = json.loads(latest.read_text())["config"]
        steps["predict"] = run_step([*CLV, "predict"], env)
        store_mb = (root / "shop.db").stat().st_size / 1e6

    print("| step | wall (s) | CPU (s) | peak RSS (MB) | load avg before |")
    print("|---|---:|---:|---:|---:|")
    for name, s in steps.items():
        print(
            f"| {name} | {s['wall']:.1f} | {s['cpu']:.1f} | {s['rss_mb']:,.0f} | {s['load']:.2f} |"
        )
    print()
    for name, config in configs.items():
        print(
            f"{name}: {config['train_rows']:,} training rows (customers × "
            f"{len(config['train_cutoffs'])} training cutoffs)"
        )
    print(
        f"SQLite file {store_mb:,.0f} MB. The machine is shared: wall times vary with the load "
        "average shown."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
