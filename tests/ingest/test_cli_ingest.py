from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from retail_clv.cli import app
from retail_clv.cli.base import run_app

from .conftest import VALID, write_csv


def test_clv_ingest_prints_report_and_invariant(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "shop.csv", [VALID, VALID, VALID.replace("13085", "")])
    db = tmp_path / "cli.db"
    result = CliRunner().invoke(app, ["ingest", str(path), "--db", f"sqlite:///{db}"])
    assert result.exit_code == 0, result.output
    assert "Ingest report" in result.output
    assert "MISSING_CUSTOMER_ID" in result.output
    assert "rows read 3 = loaded 1 + rejected 1 + duplicates 1  [OK]" in result.output
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM transactions")).scalar() == 1
    engine.dispose()


def test_clv_ingest_column_mapping(tmp_path: Path) -> None:
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Client Ref,Country"
    path = write_csv(tmp_path / "mapped.csv", [VALID], header=header)
    result = CliRunner().invoke(app, ["ingest", str(path), "--column", "customer_id=Client Ref"])
    assert result.exit_code == 0, result.output
    assert "loaded 1" in result.output


def test_clv_ingest_bad_input_is_one_line_without_traceback(tmp_path: Path, capsys) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert run_app(["ingest", str(path)]) == 1
    err = capsys.readouterr().err
    assert "file is empty" in err and "Traceback" not in err

    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Client Ref,Country"
    wrong = write_csv(tmp_path / "wrong.csv", [VALID], header=header)
    assert run_app(["ingest", str(wrong)]) == 1
    err = capsys.readouterr().err
    assert "required column 'customer_id' is missing" in err
    assert "Client Ref" in err and "Traceback" not in err


def test_clv_ingest_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["ingest", "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "--column" in result.output


def test_clv_ingest_warns_about_ambiguous_dates_and_day_first_fixes_it(tmp_path: Path) -> None:
    lines = [
        VALID.replace("2009-12-01 07:45:00", "01/03/2010 10:00"),
        VALID.replace("2009-12-01 07:45:00", "02/03/2010 10:00").replace("489434", "489435"),
    ]
    path = write_csv(tmp_path / "eu.csv", lines)
    result = CliRunner().invoke(app, ["ingest", str(path), "--db", f"sqlite:///{tmp_path}/a.db"])
    assert result.exit_code == 0, result.output
    assert "Warning: eu.csv: 2 slash dates could be read day-first or month-first" in " ".join(
        result.output.split()
    )
    assert "2010-01-03 10:00 .. 2010-02-03 10:00" in result.output

    db = tmp_path / "b.db"
    result = CliRunner().invoke(
        app, ["ingest", str(path), "--day-first", "--db", f"sqlite:///{db}"]
    )
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        dates = conn.execute(sa.text("SELECT min(invoice_date) FROM transactions")).scalar()
    engine.dispose()
    assert str(dates).startswith("2010-03-01 10:00")
