"""``clv serve`` (the API under uvicorn) and ``clv dashboard`` (the Streamlit app)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from retail_clv.cli.base import app, err_console
from retail_clv.config import get_settings

DASHBOARD_APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    db: Annotated[
        str | None, typer.Option("--db", help="Store URL (default CLV_DATABASE_URL).")
    ] = None,
    models_dir: Annotated[
        Path | None, typer.Option(help="Model runs folder (default CLV_MODELS_DIR).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes. Each has its own model, caches and job list: keep 1 when "
            "you use POST /train (the one-training-job rule is per process).",
        ),
    ] = 1,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    access_log: Annotated[
        bool, typer.Option(help="One JSON line per request with its request id.")
    ] = True,
) -> None:
    """Serve the HTTP API (FastAPI under uvicorn); docs at http://HOST:PORT/docs.

    Example: ``clv serve --port 8000 --db sqlite:///data/retail_clv.db --models-dir models``
    """
    import uvicorn

    from retail_clv.api.middleware import server_logging_config

    # Worker processes read their settings from the environment, so pass the options there.
    if db is not None:
        os.environ["CLV_DATABASE_URL"] = db
    if models_dir is not None:
        os.environ["CLV_MODELS_DIR"] = str(models_dir)
    get_settings.cache_clear()
    try:
        get_settings()  # fail fast, here, on an invalid setting (e.g. a placeholder API key)
    except ValidationError as exc:
        problems = "; ".join(str(error["msg"]) for error in exc.errors())
        err_console.print(f"[bold red]Error:[/] invalid settings: {problems}", highlight=False)
        raise typer.Exit(1) from None
    # Open (and migrate) the store once here: a bad URL or a database that is down is one clear
    # line instead of a traceback per worker, and workers never race to create the tables.
    from retail_clv.store.db import get_engine, sqlite_file

    url = get_settings().database_url
    new_file = sqlite_file(url)
    new_file = new_file if new_file is not None and not new_file.exists() else None
    get_engine(url).dispose()
    if new_file is not None:  # a mistyped --db serves an empty store: say so before it starts
        err_console.print(
            f"[yellow]Note:[/] there was no store at {new_file}; a new, empty one was created. "
            "The API has no customers until transactions are uploaded (POST /ingest or the "
            "dashboard); to serve an existing store, check --db or CLV_DATABASE_URL.",
            highlight=False,
        )
    uvicorn.run(
        "retail_clv.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=server_logging_config(log_level.upper(), access_log),
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8501,
    api_url: Annotated[
        str | None, typer.Option(help="API the dashboard talks to (default CLV_API_URL).")
    ] = None,
) -> None:
    """Start the Streamlit dashboard (a client of the API; start ``clv serve`` too).

    Example: ``clv dashboard --port 8501 --api-url http://localhost:8000``
    """
    if not DASHBOARD_APP.exists():
        err_console.print(f"[bold red]Error:[/] dashboard app not found at {DASHBOARD_APP}")
        raise typer.Exit(1)
    env = dict(os.environ)
    if api_url is not None:
        env["CLV_API_URL"] = api_url
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(DASHBOARD_APP),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
    ]
    if os.name == "posix":
        # become Streamlit: a stop signal (kill, systemd, docker stop) then reaches it; a child
        # was left running, holding the port, when only this process was stopped
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, command, env)
    raise typer.Exit(subprocess.call(command, env=env))  # Windows: exec would not wait
