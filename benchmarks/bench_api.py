"""Benchmark the HTTP API against a real ``clv serve`` process on a free localhost port.

What it does:

1. Builds a store from ``../shared/data/online_retail_II.csv.gz`` (the synthetic generator when
   the file is absent), trains a model with the ``quick`` budget and writes every customer's
   prediction — in a work folder, reused on later runs with ``--reuse``.
2. Starts ``python -m retail_clv serve`` (uvicorn, default settings: one worker, JSON access log
   on, written to a file) on a free 127.0.0.1 port.
3. Measures
   (a) ``GET /customers/{id}/prediction`` with 50 concurrent keep-alive clients: closed loop
       (each client sends its next request as soon as the answer arrives: maximum req/s) and
       open loop (the 50 clients together offer a fixed 1,500 req/s; latency is counted from the
       scheduled send time, so queueing is not hidden), plus ``wrk`` when it is installed;
   (b) ``POST /predict`` with 10,000 customer ids (first call and median of the next five);
   (c) ``POST /pipeline`` with the full Online Retail II CSV (decompressed): wall time and the
       server's peak RSS (``VmHWM`` of ``/proc/<pid>/status``).
4. Prints a markdown table with the machine description.

Only loopback addresses are used. Run: ``python benchmarks/bench_api.py [--reuse]``.
The machine may be shared: numbers are noisy, the load average is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from _machine import cpu_model, memory_gb

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "online_retail_II.csv.gz"
HOST = "127.0.0.1"


# ------------------------------------------------------------------------------------------
# machine and process facts
# ------------------------------------------------------------------------------------------


def machine() -> dict:
    cpu = cpu_model()
    mem_gb = memory_gb()
    import fastapi
    import uvicorn

    loop = "uvloop" if _has("uvloop") else "asyncio"
    http = "httptools" if _has("httptools") else "h11"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_gb, 1) if mem_gb else None,
        "python": platform.python_version(),
        "os": platform.platform(),
        "server": f"uvicorn {uvicorn.__version__} ({loop}, {http}), FastAPI {fastapi.__version__}",
    }


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (uvicorn workers are children of the supervisor)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def proc_memory_mb(pid: int) -> dict[str, float]:
    """Largest VmRSS / VmHWM over the server's processes (the one that served the upload)."""
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    for member in process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith(("VmHWM", "VmRSS")):
                key, value = line.split(":", 1)
                values[key] = max(values[key], int(value.split()[0]) / 1024)
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server's processes (``/proc/<pid>/stat``)."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------------
# setup: store, model, predictions
# ------------------------------------------------------------------------------------------


def build(workdir: Path, data: Path, budget: str, reuse: bool) -> dict:
    marker = workdir / "ready.json"
    if reuse and marker.exists():
        print(f"reusing {workdir}", file=sys.stderr)
        return json.loads(marker.read_text())
    from retail_clv.ingest.pipeline import ingest_files
    from retail_clv.models.registry import data_fingerprint, load_run, save_run
    from retail_clv.models.scoring import default_as_of, default_training_as_of, score
    from retail_clv.models.training import train
    from retail_clv.store.db import get_engine
    from retail_clv.store.predictions import write_predictions
    from retail_clv.store.queries import read_cancellations, read_purchases

    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    raw = workdir / "online_retail_II.csv"
    if data.exists():
        with gzip.open(data, "rb") as src, raw.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        source = f"{data.name} (decompressed, {raw.stat().st_size / 1e6:.0f} MB)"
    else:
        import datetime as dt

        from retail_clv.synth import generate

        generate(customers=6000, start=dt.date(2009, 12, 1), months=24, seed=1, out=raw)
        source = f"synthetic generator ({raw.stat().st_size / 1e6:.0f} MB)"
    db_url = f"sqlite:///{workdir / 'store.db'}"
    engine = get_engine(db_url)
    t0 = time.perf_counter()
    ingest_files([raw], engine, progress=False)
    ingest_s = time.perf_counter() - t0
    purchases, cancellations = read_purchases(engine), read_cancellations(engine)
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    with threadpool_limits(limits=1):  # as the API's training job (see create_app)
        result = train(
            purchases,
            cancellations,
            as_of=default_training_as_of(purchases, 30),
            horizon_days=30,
            budget=budget,
        )
    train_s = time.perf_counter() - t0
    models_dir = workdir / "models"
    save_run(result, models_dir, data_fingerprint(purchases, db_url))
    bundle = load_run(models_dir)
    as_of = default_as_of(purchases)
    scored = score(bundle, purchases, cancellations, as_of=as_of)
    write_predictions(engine, scored, bundle.run_id, as_of, 30)
    engine.dispose()
    facts = {
        "db_url": db_url,
        "models_dir": str(models_dir),
        "raw_csv": str(raw),
        "source": source,
        "customer_ids": scored["customer_id"].to_list(),
        "purchase_lines": purchases.height,
        "ingest_seconds": round(ingest_s, 1),
        "train_seconds": round(train_s, 1),
        "budget": budget,
    }
    marker.write_text(json.dumps(facts))
    return facts


def start_server(
    facts: dict, port: int, workers: int, log: Path, access_log: bool = True
) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "retail_clv",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--db",
        facts["db_url"],
        "--models-dir",
        facts["models_dir"],
        "--workers",
        str(workers),
        "--access-log" if access_log else "--no-access-log",
    ]
    env = {k: v for k, v in os.environ.items() if k != "CLV_API_KEY"}
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    base = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"server not ready after 120 s:\n{log.read_text()}")


# ------------------------------------------------------------------------------------------
# (a) GET /customers/{id}/prediction: a minimal keep-alive HTTP/1.1 load generator
# ------------------------------------------------------------------------------------------


async def _client(port, paths, start, deadline, rate, latencies, statuses) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    sent = 0
    try:
        while True:
            if rate:
                scheduled = start + sent / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                t0 = scheduled  # open loop: count queueing delay too
            else:
                t0 = time.perf_counter()
            if t0 >= deadline:
                return
            path = paths[random.randrange(len(paths))]
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            statuses.append(int(head[9:12]))
            sent += 1
    finally:
        writer.close()


async def _load(port, paths, clients, seconds, total_rate) -> dict:
    latencies: list[float] = []
    statuses: list[int] = []
    start = time.perf_counter() + 0.1
    deadline = start + seconds
    per_client = total_rate / clients if total_rate else None
    await asyncio.gather(
        *(
            _client(
                port,
                paths,
                start + (i / total_rate if total_rate else 0.0),
                deadline,
                per_client,
                latencies,
                statuses,
            )
            for i in range(clients)
        )
    )
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "non_200": sum(1 for s in statuses if s != 200),
    }


def load(port: int, paths: list[str], clients: int, seconds: float, rate: float | None) -> dict:
    coroutine = _load(port, paths, clients, seconds, rate)
    if _has("uvloop"):
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def run_wrk(port: int, ids: list[str], seconds: int) -> dict | None:
    if shutil.which("wrk") is None:
        return None
    script = Path(tempfile.mkdtemp()) / "ids.lua"
    sample = ids[:2000]
    script.write_text(
        "ids = {" + ",".join(f'"{i}"' for i in sample) + "}\n"
        "request = function()\n"
        '  return wrk.format("GET", "/customers/" .. ids[math.random(#ids)] .. "/prediction")\n'
        "end\n"
    )
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            "-c50",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://{HOST}:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "non_200": int(non_2xx.group(1)) if non_2xx else 0,
    }


# ------------------------------------------------------------------------------------------
# (b) POST /predict, (c) POST /pipeline
# ------------------------------------------------------------------------------------------


def bench_predict(base: str, ids: list[str]) -> dict:
    known = ids[:10_000]
    body = {"customer_ids": known + [f"UNKNOWN-{i}" for i in range(10_000 - len(known))]}
    timings = []
    with httpx.Client(base_url=base, timeout=120) as http:
        for _ in range(6):
            t0 = time.perf_counter()
            response = http.post("/predict", json=body)
            timings.append(time.perf_counter() - t0)
            response.raise_for_status()
        result = response.json()
        cold = []
        for as_of in ("2011-06-01", "2011-07-01", "2011-08-01"):  # features computed anew
            t0 = time.perf_counter()
            http.post("/predict", json={**body, "as_of": as_of}).raise_for_status()
            cold.append(time.perf_counter() - t0)
    return {
        "ids": len(body["customer_ids"]),
        "scored": len(result["predictions"]),
        "unknown": len(result["unknown_customer_ids"]),
        "first_s": timings[0],
        "median_next5_s": statistics.median(timings[1:]),
        "new_cutoff_s": statistics.median(cold),
        "new_cutoff_max_s": max(cold),
    }


def bench_pipeline(base: str, raw_csv: Path, pid: int) -> dict:
    before = proc_memory_mb(pid)
    with httpx.Client(base_url=base, timeout=600) as http, raw_csv.open("rb") as handle:
        t0 = time.perf_counter()
        response = http.post("/pipeline", files={"file": (raw_csv.name, handle, "text/csv")})
        wall = time.perf_counter() - t0
    response.raise_for_status()
    body = response.json()
    after = proc_memory_mb(pid)
    return {
        "upload_mb": raw_csv.stat().st_size / 1e6,
        "rows_read": body["report"]["rows_read"],
        "customers": len(body["predictions"]),
        "wall_s": wall,
        "rss_before_mb": before["VmRSS"],
        "peak_rss_mb": after["VmHWM"],
    }


# ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "clv-bench-api"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the store/model of a previous run"
    )
    parser.add_argument("--budget", default="quick", choices=["quick", "default"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=1500.0, help="offered req/s of the open loop")
    parser.add_argument(
        "--no-access-log", action="store_true", help="start the server without its access log"
    )
    args = parser.parse_args()

    facts = build(args.workdir, args.data, args.budget, args.reuse)
    port = free_port()
    log = args.workdir / "server.log"
    server = start_server(facts, port, args.workers, log, access_log=not args.no_access_log)
    base = f"http://{HOST}:{port}"
    try:
        time.sleep(2.0)  # let the start-up warm-up (store load + scoring) finish
        ids = facts["customer_ids"]
        paths = [f"/customers/{i}/prediction" for i in ids]
        load(port, paths, args.clients, 2.0, None)  # warm-up
        load_before = loadavg()
        cpu0 = cpu_seconds(server.pid)
        closed = load(port, paths, args.clients, args.seconds, None)
        closed["server_cpu_us_per_request"] = (
            (cpu_seconds(server.pid) - cpu0) / closed["requests"] * 1e6
        )
        opened = load(port, paths, args.clients, args.seconds, args.rate)
        cpu0 = cpu_seconds(server.pid)
        wrk = run_wrk(port, ids, int(args.seconds))
        if wrk:
            wrk["server_cpu_us_per_request"] = (
                (cpu_seconds(server.pid) - cpu0) / (wrk["rps"] * int(args.seconds)) * 1e6
            )
        predict = bench_predict(base, ids)
        pipeline = (
            bench_pipeline(base, Path(facts["raw_csv"]), server.pid) if args.data.exists() else None
        )
        load_after = loadavg()
    finally:
        server.terminate()
        server.wait(timeout=30)

    info = machine()
    results = {
        "machine": info,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "setup": {k: v for k, v in facts.items() if k != "customer_ids"},
        "prediction_closed_loop": closed,
        "prediction_open_loop": opened,
        "prediction_wrk": wrk,
        "predict_10k": predict,
        "pipeline": pipeline,
    }
    print(json.dumps(results, indent=2), file=sys.stderr)
    access = "off" if args.no_access_log else "on"

    print(
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB RAM, "
        f"Python {info['python']}, {info['server']}, {args.workers} worker(s), access log "
        f"{access}; load average before / after the runs {load_before} / {load_after} "
        "(shared machine: numbers are noisy). Data: "
        f"{facts['source']}, {facts['purchase_lines']:,} purchase lines, "
        f"{len(facts['customer_ids']):,} scored customers; model budget {facts['budget']}.\n"
    )
    print("| Benchmark | Result |")
    print("|---|---|")
    print(
        f"| `GET /customers/{{id}}/prediction`, {args.clients} clients, closed loop "
        f"(Python client) | {closed['rps']:,.0f} req/s, p50 {closed['p50_ms']:.1f} ms, "
        f"p99 {closed['p99_ms']:.1f} ms, non-200: {closed['non_200']}; server CPU "
        f"{closed['server_cpu_us_per_request']:.0f} µs/request |"
    )
    print(
        f"| same, open loop offering {args.rate:,.0f} req/s over {args.clients} connections "
        f"| {opened['rps']:,.0f} req/s served, p50 {opened['p50_ms']:.2f} ms, "
        f"p99 {opened['p99_ms']:.2f} ms, non-200: {opened['non_200']} |"
    )
    if wrk:
        print(
            f"| same, `wrk -t1 -c{args.clients}` closed loop | {wrk['rps']:,.0f} req/s, "
            f"p50 {wrk['p50_ms']:.2f} ms, p99 {wrk['p99_ms']:.2f} ms, non-2xx: {wrk['non_200']}; "
            f"server CPU {wrk['server_cpu_us_per_request']:.0f} µs/request |"
        )
    print(
        f"| `POST /predict`, {predict['ids']:,} ids ({predict['scored']:,} known, "
        f"{predict['unknown']:,} unknown) | first {predict['first_s']:.2f} s, then median "
        f"{predict['median_next5_s']:.2f} s; an as_of not seen before (features and scores "
        f"computed on the whole store): median {predict['new_cutoff_s']:.2f} s, max "
        f"{predict['new_cutoff_max_s']:.2f} s over 3 dates |"
    )
    if pipeline:
        print(
            f"| `POST /pipeline`, {pipeline['upload_mb']:.0f} MB CSV, "
            f"{pipeline['rows_read']:,} rows | {pipeline['wall_s']:.1f} s wall, "
            f"{pipeline['customers']:,} customers scored; "
            f"server peak RSS {pipeline['peak_rss_mb']:,.0f} MB (RSS before "
            f"{pipeline['rss_before_mb']:,.0f} MB) |"
        )
    print(
        f"\nCommand: `python benchmarks/bench_api.py` (store build + quick training: ingest "
        f"{facts['ingest_seconds']} s, training {facts['train_seconds']} s, not part of the "
        "API numbers)"
    )


if __name__ == "__main__":
    main()
