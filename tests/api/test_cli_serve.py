import os

from typer.testing import CliRunner

from retail_clv.cli import app
from retail_clv.cli import serve as serve_module


def test_dashboard_becomes_streamlit_on_the_app_file(monkeypatch) -> None:
    # on POSIX clv replaces itself with Streamlit (a child started with subprocess.call kept
    # running, holding the port, when clv was killed); elsewhere it waits for a child
    import sys

    calls = []

    def fake_exec(path, command, env):
        assert path == sys.executable
        calls.append((command, env))
        raise SystemExit(0)

    def fake_call(command, env):
        if os.name == "posix":
            raise AssertionError("started Streamlit as a child process")
        calls.append((command, env))
        return 0

    monkeypatch.setattr(os, "execve", fake_exec)
    monkeypatch.setattr(serve_module.subprocess, "call", fake_call)
    result = CliRunner().invoke(app, ["dashboard", "--port", "8765", "--api-url", "http://x:1"])
    assert result.exit_code == 0, result.output
    [(command, env)] = calls
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert command[4].endswith(os.path.join("retail_clv", "dashboard", "app.py"))
    assert command[5:] == ["--server.port", "8765", "--server.headless", "true"]
    assert env["CLV_API_URL"] == "http://x:1"


def test_serve_passes_options_to_uvicorn_and_the_environment(monkeypatch, tmp_path) -> None:
    import uvicorn

    seen = {}

    def fake_run(target, **kwargs):
        seen.update(kwargs, target=target)
        seen["db"] = os.environ["CLV_DATABASE_URL"]
        seen["models"] = os.environ["CLV_MODELS_DIR"]

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setenv("CLV_DATABASE_URL", "sqlite:///unused.db")
    url = f"sqlite:///{tmp_path / 'x.db'}"
    args = ["serve", "--port", "8123", "--db", url, "--models-dir", str(tmp_path / "m")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert seen["target"] == "retail_clv.api.app:create_app"
    assert seen["factory"] is True
    assert (seen["host"], seen["port"], seen["workers"]) == ("127.0.0.1", 8123, 1)
    assert seen["db"] == url
    assert seen["models"] == str(tmp_path / "m")
    assert seen["log_config"]["loggers"]["retail_clv.api.access"]["level"] == "INFO"


def test_serve_refuses_a_placeholder_api_key(monkeypatch) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    monkeypatch.setenv("CLV_API_KEY", "change-me")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 1
    assert "placeholder" in result.output
    assert "Traceback" not in result.output


def test_serve_with_an_unusable_store_is_one_line_and_never_starts(monkeypatch, capsys) -> None:
    import uvicorn

    from retail_clv.cli.base import run_app

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: started.append(True))
    code = run_app(["serve", "--db", "mysql://u:p@localhost/shop"])
    assert code == 1
    assert started == []
    err = capsys.readouterr().err
    assert "Error: unsupported database 'mysql'" in " ".join(err.split())
    assert "Traceback" not in err
    # a port that is no number: the new-store check parsed the URL first, a ValueError
    assert run_app(["serve", "--db", "postgresql+psycopg://u:Qz7@localhost:5x/shop"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "Error: invalid database URL" in err and "Qz7" not in err and "Traceback" not in err


def test_serve_says_when_it_created_a_new_empty_store(monkeypatch, tmp_path) -> None:
    # a mistyped --db silently served an empty store (serve creates one, for uploads)
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    path = tmp_path / "typo" / "shop.db"
    result = CliRunner().invoke(app, ["serve", "--db", f"sqlite:///{path}"])
    assert result.exit_code == 0, result.output
    said = "".join(result.output.split())  # rich folds a long tmp path anywhere
    assert "".join(f"there was no store at {path}; a new, empty one was created".split()) in said
    assert "check--dborCLV_DATABASE_URL" in said
    assert path.is_file()
    again = CliRunner().invoke(app, ["serve", "--db", f"sqlite:///{path}"])
    assert again.exit_code == 0 and "no store" not in again.output
