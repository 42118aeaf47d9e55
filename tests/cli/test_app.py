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


def test_domain_error_text_is_printed_as_written_not_as_markup(capsys, monkeypatch) -> None:
    import retail_clv.cli.base as cli_base

    def boom(*args, **kwargs):  # a column named like rich markup, e.g. from a spreadsheet
        raise InputFileError("required column 'price' is missing; columns found: '[b]Preis[/b]'")

    monkeypatch.setattr(cli_base, "app", boom)
    assert run_app(["anything"]) == 1
    assert "columns found: '[b]Preis[/b]'" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error() -> None:
    assert run_app(["no-such-command"]) == 2
