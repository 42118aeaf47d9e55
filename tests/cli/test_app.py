import io

import pytest
from rich.console import Console
from typer.testing import CliRunner

from retail_clv import __version__
from retail_clv.cli import app
from retail_clv.cli.base import run_app
from retail_clv.errors import InputFileError


def test_version_command_prints_package_version() -> None:
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_domain_error_becomes_one_line_and_exit_code_1(capsys, monkeypatch) -> None:
    import retail_clv.cli.base as cli_base

    def boom(*args, **kwargs):
        raise InputFileError("file is empty: x.csv")

    monkeypatch.setattr(cli_base, "app", boom)
    assert run_app(["anything"]) == 1
    err = capsys.readouterr().err
    assert "file is empty: x.csv" in err
    assert "Traceback" not in err


def test_a_file_system_error_is_one_line_naming_the_path(capsys, monkeypatch) -> None:
    import retail_clv.cli.base as cli_base

    def boom(*args, **kwargs):
        raise FileExistsError(17, "File exists", "models/afile")

    monkeypatch.setattr(cli_base, "app", boom)
    assert run_app(["anything"]) == 1
    err = capsys.readouterr().err
    assert "Error: File exists: models/afile (a file system error; check the path" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--budget", "quick", "--models-dir", "{f}"],
        ["backtest", "--cutoff", "2011-11-09", "--json", "{f}/x.json"],
        ["predict", "--out", "{f}/x.csv"],
        ["generate", "--out", "{f}/x.csv", "--customers", "5", "--months", "2"],
        ["demo", "--models-dir", "{f}"],
    ],
)
def test_an_output_path_under_a_file_is_refused_before_any_work(
    argv, tmp_path, capsys, monkeypatch
) -> None:
    # train and backtest used to run to the end and then stop on FileExistsError's traceback
    import retail_clv.cli.base as cli_base

    a_file = tmp_path / "afile"
    a_file.write_text("")

    def no_store(*args, **kwargs):
        raise AssertionError("the store was read before the output path was checked")

    monkeypatch.setattr(cli_base, "read_store", no_store)
    for module in ("models", "backtest"):
        monkeypatch.setattr(f"retail_clv.cli.{module}.read_store", no_store)
    monkeypatch.setenv("CLV_MODELS_DIR", str(tmp_path / "models"))
    assert run_app([arg.format(f=a_file) for arg in argv]) == 1
    err = capsys.readouterr().err
    flat = "".join(err.split())  # rich wraps long paths anywhere, even inside a word
    assert "".join(f"{a_file} is a file, not a folder; give another path".split()) in flat
    assert "Traceback" not in err


def test_domain_error_text_is_printed_as_written_not_as_markup(capsys, monkeypatch) -> None:
    import retail_clv.cli.base as cli_base

    def boom(*args, **kwargs):  # a column named like rich markup, e.g. from a spreadsheet
        raise InputFileError("required column 'price' is missing; columns found: '[b]Preis[/b]'")

    monkeypatch.setattr(cli_base, "app", boom)
    assert run_app(["anything"]) == 1
    assert "columns found: '[b]Preis[/b]'" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error() -> None:
    assert run_app(["no-such-command"]) == 2


def test_progress_without_a_terminal_prints_each_new_step_once(monkeypatch, capsys) -> None:
    from retail_clv.cli import base

    clock = iter([0.0, 0.2, 1.6, 3.0, 3.4, 3.4])  # start, then one reading per printed line
    monkeypatch.setattr(base, "_now", lambda: next(clock))
    monkeypatch.setattr(base, "console", Console(file=io.StringIO(), width=100))
    long = "tuning Model 2 (RF + XGBoost + Ridge + Lasso stack) · search fit 2 of 6 · " * 2
    assert not base.console.is_terminal
    with base.progress_bar() as on_progress:
        on_progress(0.02, "building features")  # printed
        on_progress(0.05, "building features")  # same step: not again
        on_progress(0.10, "tuning Model 1 [RF]")  # printed as written, not read as markup
        on_progress(0.45, "tuning Model 2")
        on_progress(0.46, "fitting the products model")  # a quick step is printed too
        on_progress(0.47, long)  # longer than the console: one line all the same
    lines = base.console.file.getvalue().splitlines()
    steps = [line for line in lines if line.startswith("[")]
    assert steps == [
        "[     0 s]   2% building features",
        "[     2 s]  10% tuning Model 1 [RF]",
        "[     3 s]  45% tuning Model 2",
        "[     3 s]  46% fitting the products model",
        f"[     3 s]  47% {long}",
    ]


def test_the_entry_points_hide_only_scikit_learn_s_nan_search_score_line() -> None:
    import warnings

    from retail_clv.logging import hide_repeated_warnings

    with warnings.catch_warnings(record=True) as seen:  # restores the filters afterwards
        warnings.simplefilter("always")
        hide_repeated_warnings()  # what configure_logging, called by the entry points, does
        # the run's own warning names the skipped candidates; sklearn's line would repeat it
        message = "One or more of the test scores are non-finite: [0.4 nan]"
        warnings.warn(message, UserWarning, stacklevel=1)
        warnings.warn("another warning", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["another warning"]


def test_psycopgs_ignored_cleanup_line_is_hidden_by_the_entry_points(caplog) -> None:
    # a connection lost mid-ingest printed psycopg's "error ignored terminating <psycopg.Copy
    # [BAD] at 0x…>" above the ingest's own one-line error
    import logging

    from retail_clv.logging import configure_logging

    configure_logging()
    psycopg = logging.getLogger("psycopg")
    with caplog.at_level(logging.WARNING, logger="psycopg"):
        psycopg.warning("error ignored terminating %r: %s", "<psycopg.Copy [BAD]>", "lost")
        psycopg.warning("another psycopg warning")
    assert [r.getMessage() for r in caplog.records if r.name == "psycopg"] == [
        "another psycopg warning"
    ]


def test_an_output_folder_behind_a_dangling_link_is_refused_before_any_work(
    tmp_path, capsys, monkeypatch
) -> None:
    import retail_clv.cli.models as cli_models

    link = tmp_path / "models"
    link.symlink_to(tmp_path / "gone")

    def no_store(*args, **kwargs):
        raise AssertionError("the store was read before the output path was checked")

    monkeypatch.setattr(cli_models, "read_store", no_store)
    assert run_app(["train", "--budget", "quick", "--models-dir", str(link)]) == 1
    flat = "".join(capsys.readouterr().err.split())  # rich wraps long paths anywhere
    assert "".join(f"{link} is a link to a missing target; give another path".split()) in flat
