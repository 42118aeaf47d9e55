"""End to end in a real browser: ``clv serve`` + ``clv dashboard`` driven by headless Chromium.

The module fixture ingests a small synthetic store (300 customers, 13 months) with the real
ingestion code, then starts the API (no model yet) and the dashboard as subprocesses on free
localhost ports. Debian's Chromium (``/usr/bin/chromium``, installed by ``make browser``) is
driven with Playwright; no browser is downloaded. The model is trained *through the browser*:
the Models page first says no model exists, then its Retrain button runs ``POST /train``
(``quick`` budget) with a progress bar; the other tests use that run. Each test saves a
screenshot of its page: under ``docs/screenshots/`` when ``CLV_UPDATE_SCREENSHOTS=1``
(``make screenshots``), else in a temporary folder so a test run leaves the checkout untouched.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from retail_clv.dashboard.formatting import format_currency
from retail_clv.dashboard.frames import CSV_COLUMNS
from tests._ports import free_port

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = (
    REPO_ROOT / "docs" / "screenshots"
    if os.environ.get("CLV_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "retail-clv-screenshots"
)
MAX_SCREENSHOT_BYTES = 300_000
VIEWPORT = {"width": 1440, "height": 900}  # a laptop screen
SYNTH_START = dt.date(2010, 1, 1)
TRAINING_TIMEOUT_MS = 300_000  # quick budget; generous for a loaded 2-core machine


@dataclass(frozen=True)
class Stack:
    api_url: str
    dashboard_url: str
    upload: Path
    db: Path
    logs: Path


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{url} process exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started in its own session, with its children (streamlit)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _build_store(root: Path) -> Path:
    """Ingest a synthetic retailer into a fresh SQLite store; return the store file."""
    from retail_clv.ingest.pipeline import ingest_files
    from retail_clv.store.db import get_engine
    from retail_clv.synth import generate

    raw = root / "history.csv"
    generate(customers=300, start=SYNTH_START, months=13, seed=7, out=raw)
    db = root / "store.db"
    engine = get_engine(f"sqlite:///{db}")
    ingest_files([raw], engine, progress=False)
    engine.dispose()
    return db


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not CHROMIUM.exists():
        pytest.skip(f"Debian Chromium not found at {CHROMIUM}: run `make browser` (as root)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    root = tmp_path_factory.mktemp("browser")
    api_port, dashboard_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    dashboard_url = f"http://127.0.0.1:{dashboard_port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CLV_", "STREAMLIT_"))
    } | {
        "CLV_DATABASE_URL": f"sqlite:///{root / 'store.db'}",  # built by _build_store
        "CLV_MODELS_DIR": str(root / "models"),
        "CLV_OUTPUT_DIR": str(root / "output"),
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
    }
    clv = [sys.executable, "-m", "retail_clv"]
    logs = root / "logs"
    logs.mkdir()
    api_log, dash_log = logs / "api.log", logs / "dashboard.log"
    started: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*clv, *args],
                env=env,
                cwd=root,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(proc)
        return proc

    try:
        # the dashboard needs no backend to start: let it boot while the model trains
        dashboard = start(
            ["dashboard", "--port", str(dashboard_port), "--api-url", api_url], dash_log
        )
        db = _build_store(root)
        api = start(["serve", "--port", str(api_port), "--no-access-log"], api_log)
        from retail_clv.synth import generate

        # the file uploaded in the browser: another small retailer, with the usual dirt
        upload = root / "raw_upload.csv"
        generate(customers=60, start=SYNTH_START, months=6, seed=11, out=upload)
        _wait_http(f"{dashboard_url}/_stcore/health", dashboard, dash_log)
        _wait_http(f"{api_url}/health", api, api_log)
        yield Stack(api_url, dashboard_url, upload, db, logs)
    finally:
        for proc in reversed(started):
            _stop(proc)


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, stack: Stack) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(stack.dashboard_url)
    page.get_by_role("heading", name="Full Pipeline").wait_for()
    yield page
    context.close()


@pytest.fixture(scope="module")
def trained(stack: Stack, browser: Any) -> str:
    """Train the first model from the Models page (no model yet -> Retrain); return its run id."""
    assert httpx.get(f"{stack.api_url}/ready").status_code == 503
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        page.goto(f"{stack.dashboard_url}/models")
        page.get_by_text("No model trained yet").first.wait_for()
        page.get_by_role("button", name="Retrain").click()
        page.locator('[data-testid="stProgress"]').first.wait_for()
        done = page.get_by_text("is now active")
        done.wait_for(timeout=TRAINING_TIMEOUT_MS)
        ready = httpx.get(f"{stack.api_url}/ready").json()
        assert ready["model_run_id"] in str(done.inner_text())
        return str(ready["model_run_id"])
    finally:
        context.close()


def save_screenshot(page: Any, name: str) -> Path:
    """Screenshot the whole page (Streamlit scrolls inside stMain) into ``SCREENSHOTS``."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(max(900, height), 4000)})
    page.wait_for_timeout(1500)  # let the charts re-layout
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    tmp = path.with_suffix(".tmp.png")
    page.screenshot(path=str(tmp))
    page.set_viewport_size(VIEWPORT)
    if tmp.stat().st_size > MAX_SCREENSHOT_BYTES:
        from PIL import Image  # matplotlib's dependency

        with Image.open(tmp) as image:
            image.convert("RGB").quantize(colors=128).save(path, optimize=True)
        tmp.unlink()
    else:
        shutil.move(tmp, path)
    assert path.stat().st_size <= MAX_SCREENSHOT_BYTES * 1.2
    return path


def metric_value(page: Any, label: str) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return str(metric.locator('[data-testid="stMetricValue"]').inner_text()).strip()


def test_full_pipeline_upload_report_predictions_and_download(
    stack: Stack, trained: str, page: Any, tmp_path: Path
) -> None:
    # what the API itself says about the file (the dashboard must show exactly this)
    with stack.upload.open("rb") as handle:
        answer = httpx.post(
            f"{stack.api_url}/pipeline", files={"file": (stack.upload.name, handle)}, timeout=120
        )
    assert answer.status_code == 200, answer.text
    expected: dict[str, Any] = answer.json()
    assert expected["model_run_id"] == trained
    report = expected["report"]
    n_predictions = len(expected["predictions"])
    assert report["rows_rejected"] > 0 and n_predictions > 0

    page.locator('input[type="file"]').set_input_files(str(stack.upload))
    page.get_by_text("Predictions for the next 30 days").wait_for(timeout=90_000)

    assert metric_value(page, "Rows read") == f"{report['rows_read']:,}"
    assert metric_value(page, "Rows loaded") == f"{report['rows_loaded']:,}"
    assert metric_value(page, "Rows rejected") == f"{report['rows_rejected']:,}"
    assert metric_value(page, "Duplicates") == f"{report['rows_duplicate']:,}"

    chart = page.locator('[data-testid="stVegaLiteChart"]').filter(
        has_text="Why rows were rejected"
    )
    chart.locator("svg").first.wait_for()
    for reason, count in report["reason_counts"].items():
        if count:
            assert chart.locator("text", has_text=reason).count() >= 1, reason
            assert chart.locator("text", has_text=f"{count:,}").count() >= 1, (reason, count)

    page.get_by_text(f"Showing {n_predictions:,} of {n_predictions:,} customers").wait_for()
    for title in ("Distribution of predicted", "Top 20 customers", "Model 1 vs Model 2"):
        page.locator('[data-testid="stVegaLiteChart"]').filter(has_text=title).wait_for()

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download predictions CSV").click()
    download = download_info.value
    assert download.suggested_filename == "predictions_raw_upload.csv"
    target = tmp_path / "predictions.csv"
    download.save_as(str(target))
    csv = pd.read_csv(io.BytesIO(target.read_bytes()), dtype={"customer_id": str})
    assert list(csv.columns) == CSV_COLUMNS
    assert len(csv) == n_predictions
    assert set(csv["customer_id"]) == {p["customer_id"] for p in expected["predictions"]}

    save_screenshot(page, "full_pipeline")


def test_customers_page_shows_the_stored_prediction(stack: Stack, trained: str, page: Any) -> None:
    from retail_clv.store.db import get_engine
    from retail_clv.store.predictions import read_predictions

    engine = get_engine(f"sqlite:///{stack.db}")
    stored = read_predictions(engine)
    engine.dispose()
    customer = str(stored.sort("predicted_spend_30d_model1", descending=True)["customer_id"][0])
    expected = httpx.get(f"{stack.api_url}/customers/{customer}/prediction").json()
    assert expected["model_run_id"] == trained

    page.get_by_role("link", name="Customers").click()
    page.get_by_role("heading", name="Customers").wait_for()
    box = page.get_by_label("Customer id")
    box.fill(customer)
    box.press("Enter")
    box.blur()
    page.get_by_text("Features behind the predictions").wait_for()
    assert metric_value(page, "Model 1 · predicted spend") == format_currency(
        expected["predicted_spend_30d_model1"]
    )
    assert metric_value(page, "Model 2 · predicted spend") == format_currency(
        expected["predicted_spend_30d_model2"]
    )
    page.locator('[data-testid="stVegaLiteChart"]').filter(has_text="Spend per month").wait_for()
    save_screenshot(page, "customers")


def test_models_page_shows_the_active_run(stack: Stack, trained: str, page: Any) -> None:
    active = httpx.get(f"{stack.api_url}/models/active").json()
    assert active["run_id"] == trained
    page.get_by_role("link", name="Models").click()
    page.get_by_text(f"Active run {active['run_id']}").wait_for()
    for title in ("Decile calibration", "Gain curve", "Feature importance"):
        page.locator('[data-testid="stVegaLiteChart"]').filter(has_text=title).wait_for()
    page.get_by_role("button", name="Retrain").wait_for()
    save_screenshot(page, "models")
