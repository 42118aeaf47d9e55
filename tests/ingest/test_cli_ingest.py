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
    assert "rows read 3 = loaded 1 + rejected 1 + duplicates 1 (every row accounted for)" in (
        " ".join(result.output.split())
    )
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


def test_clv_ingest_fails_after_all_files_when_one_has_no_valid_purchase(
    tmp_path: Path, capsys
) -> None:
    bad = write_csv(
        tmp_path / "bad_dates.csv",
        [
            VALID.replace("2009-12-01 07:45:00", "1st Dec 2009"),
            VALID.replace("2009-12-01 07:45:00", "Dec 1st 2009").replace("489434", "489435"),
            VALID.replace("2009-12-01 07:45:00", "Dec 1st 2009").replace("489434", "489436"),
        ],
    )
    good = write_csv(tmp_path / "good.csv", [VALID])
    db = tmp_path / "store.db"
    assert run_app(["ingest", str(bad), str(good), "--db", f"sqlite:///{db}"]) == 1
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    out = " ".join(captured.out.split())
    assert "no valid purchase line was loaded from bad_dates.csv" in err
    assert "3 rows rejected, 0 duplicates); top rejection reasons: BAD_DATE 3" in err
    assert "good.csv" not in err
    assert (
        "bad_dates.csv: most dates could not be parsed (e.g. '1st Dec 2009', 'Dec 1st 2009')" in out
    )
    assert "Accepted dates: ISO 2009-12-01 07:45:00" in out
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:  # both files processed and stored
        assert conn.execute(sa.text("SELECT count(*) FROM transactions")).scalar() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM rejected_data")).scalar() == 3
    engine.dispose()

    # Ingesting the good file again loads nothing new, but it is not an error.
    assert run_app(["ingest", str(good), "--db", f"sqlite:///{db}"]) == 0
    assert "no valid purchase line" not in capsys.readouterr().err


def test_clv_ingest_checks_every_path_before_creating_the_store(tmp_path: Path, capsys) -> None:
    good = write_csv(tmp_path / "good.csv", [VALID])
    db = tmp_path / "new" / "store.db"
    url = f"sqlite:///{db}"
    assert run_app(["ingest", str(good), str(tmp_path / "nosuch.csv"), "--db", url]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "file not found" in err and "nosuch.csv" in err
    assert not db.exists() and not db.parent.exists()
    assert run_app(["ingest", str(tmp_path), "--db", url]) == 1
    assert "is a directory" in " ".join(capsys.readouterr().err.split())
    assert not db.exists()


def test_clv_ingest_refuses_a_duplicated_header_in_one_line(tmp_path: Path, capsys) -> None:
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Price"
    path = write_csv(tmp_path / "dup.csv", [VALID.replace("United Kingdom", "9.99")], header=header)
    assert run_app(["ingest", str(path), "--db", f"sqlite:///{tmp_path}/s.db"]) == 1
    err = " ".join(capsys.readouterr().err.split())  # one message, wrapped by the console
    assert err.startswith("Error: ") and err.count("Error:") == 1 and "Traceback" not in err
    assert "dup.csv: the header has the column 'Price' more than once" in err
