"""End-to-end backtest on Online Retail II: the public protocol and a rolling check.

Usage:
    python benchmarks/bench_backtest.py [--budget quick|default] [--cutoffs 2011-05-09,...]
                                        [--data PATH] [--json-dir DIR]

From the raw file (cleaned by the real ingest code, ``clean_file``), for each cutoff: train
only on windows ending on or before it, evaluate Model 1, Model 2, the products model and the
baselines on [cutoff, cutoff + 30 days). The protocol's test cutoff is 2011-11-09; the earlier
cutoffs (2011-05-09 to 2011-10-09, monthly) are the rolling check the modelling choices were
made on. Prints a markdown table per metric and the machine description.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

from _machine import describe
from retail_clv.ingest.pipeline import clean_file
from retail_clv.models.backtest import PROTOCOL_CUTOFF, ROLLING_CUTOFFS, backtest, summary_rows

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "online_retail_II.csv.gz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", choices=["quick", "default"], default="default")
    ap.add_argument(
        "--cutoffs",
        default=",".join(str(c) for c in (*ROLLING_CUTOFFS, PROTOCOL_CUTOFF)),
        help="comma-separated test cutoffs",
    )
    ap.add_argument("--data", type=Path, default=DEFAULT)
    ap.add_argument("--horizon", type=int, default=30)
    ap.add_argument("--json-dir", type=Path, default=None, help="write one JSON per cutoff")
    args = ap.parse_args()
    print(f"Machine: {describe()}")
    t = time.perf_counter()
    clean = clean_file(args.data)
    print(
        f"clean_file({args.data.name}): {clean.purchases.height:,} purchase lines, "
        f"{clean.cancellations.height:,} cancellations in {time.perf_counter() - t:.1f} s"
    )
    cutoffs = [dt.date.fromisoformat(c.strip()) for c in args.cutoffs.split(",")]
    results = []
    for cutoff in cutoffs:
        res = backtest(clean.purchases, clean.cancellations, cutoff, args.horizon, args.budget)
        results.append(res)
        print(
            f"{cutoff}: {res['n_customers']:,} customers, {res.get('buyer_share', 0):.1%} buy, "
            f"trained + evaluated in {res['seconds']:.0f} s; blend {res['blend_weights']}",
            flush=True,
        )
        if args.json_dir:
            args.json_dir.mkdir(parents=True, exist_ok=True)
            (args.json_dir / f"backtest_{cutoff}.json").write_text(json.dumps(res, indent=2))

    names = ["model1", "model2", "run_rate", "bgnbd_gg", "mean"]
    for metric in ("r2", "gini", "top10_capture", "spearman", "mae"):
        print(f"\n**{metric}** (budget {args.budget}, horizon {args.horizon} days)\n")
        print("| cutoff | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        for res in results:
            by_name = {r["name"]: r for r in summary_rows(res)}
            cells = []
            for n in names:
                r = by_name.get(n)
                if r is None or r["failed"] or r[metric] is None:
                    cells.append("failed" if r and r["failed"] else "-")
                else:
                    cells.append(f"{r[metric]:.3f}")
            print(f"| {res['cutoff']} | " + " | ".join(cells) + " |")
    pairs = [(m, b) for m in ("model1", "model2") for b in ("run_rate", "bgnbd_gg")]
    for metric in ("r2", "gini"):
        print(f"\n**{metric} difference, model − baseline** (90% customer-bootstrap interval)\n")
        print("| cutoff | " + " | ".join(f"{m} − {b}" for m, b in pairs) + " |")
        print("|---|" + "---:|" * len(pairs))
        for res in results:
            gaps = res.get("vs_baselines") or {}
            cells = []
            for m, b in pairs:
                g = gaps.get(m, {}).get(b, {}).get(metric)
                cells.append(f"{g['delta']:+.3f} [{g['low']:+.3f}, {g['high']:+.3f}]" if g else "-")
            print(f"| {res['cutoff']} | " + " | ".join(cells) + " |")
    print("\n**products model** (distinct stock codes in the window) beside its baselines\n")
    print(
        "| cutoff | model MAE / Spearman / R² | last window MAE / Spearman / R² | train-mean MAE "
        "/ R² |\n|---|---:|---:|---:|"
    )

    def num(values: dict, key: str) -> float:
        value = values.get(key)
        return float("nan") if value is None else float(value)  # None: undefined (NaN)

    for res in results:
        p = res["models"].get("products", {})
        base = res.get("products_baselines", {})
        last, mean = base.get("last_window", {}), base.get("mean", {})
        print(
            f"| {res['cutoff']} | {num(p, 'mae'):.2f} / {num(p, 'spearman'):.3f} / "
            f"{num(p, 'r2'):.3f} | {num(last, 'mae'):.2f} / {num(last, 'spearman'):.3f} / "
            f"{num(last, 'r2'):.3f} | {num(mean, 'mae'):.2f} / {num(mean, 'r2'):.3f} |"
        )


if __name__ == "__main__":
    main()
