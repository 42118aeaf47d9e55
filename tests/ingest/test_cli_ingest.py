from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from retail_clv.cli import app
from retail_clv.cli.base import run_app

from .conftest import HEADER_II, VALID, write_csv, write_no_price


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
    # as far apart either way (32 days month-first and day-first): read month-first, warned
    lines = [
        VALID.replace("2009-12-01 07:45:00", "03/01/2010 10:00"),
        VALID.replace("2009-12-01 07:45:00", "04/02/2010 10:00").replace("489434", "489435"),
    ]
    path = write_csv(tmp_path / "eu.csv", lines)
    result = CliRunner().invoke(app, ["ingest", str(path), "--db", f"sqlite:///{tmp_path}/a.db"])
    assert result.exit_code == 0, result.output
    assert "Warning: eu.csv: 2 slash dates could be read day-first or month-first" in " ".join(
        result.output.split()
    )
    assert "2010-03-01 10:00 .. 2010-04-02 10:00" in result.output

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
    assert str(dates).startswith("2010-01-03 10:00")


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


def _counts(db: Path) -> tuple[int, int]:
    """Purchase lines and ingest runs in the store ``db``."""
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        transactions = conn.execute(sa.text("SELECT count(*) FROM transactions")).scalar()
        runs = conn.execute(sa.text("SELECT count(*) FROM ingest_runs")).scalar()
    engine.dispose()
    return int(transactions or 0), int(runs or 0)


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    return " ".join(capsys.readouterr().err.split())


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in ``tmp_path`` and name files relative to it (short paths, as users type them)."""
    monkeypatch.chdir(tmp_path)
    return Path()


def test_a_file_without_a_required_column_leaves_no_store_behind(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_no_price(here / "bad.csv")
    db = here / "new.db"
    assert run_app(["ingest", str(bad), "--db", f"sqlite:///{db}"]) == 1
    err = _err(capsys)
    assert err.startswith("Error: required column 'price' is missing in bad.csv")
    assert "Traceback" not in err
    assert not db.exists()


def test_a_csv_gz_stating_too_large_a_size_leaves_no_store_behind(
    here: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gzip trailer states the unpacked size: checked before the store is created."""
    import gzip

    from retail_clv.ingest import readers

    monkeypatch.setattr(readers, "MAX_GZIP_TEXT_BYTES", 1000)
    bomb = here / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress((HEADER_II + "\n" + (VALID + "\n") * 100).encode()))
    db = here / "new.db"
    assert run_app(["ingest", str(bomb), "--db", f"sqlite:///{db}"]) == 1
    assert "unpacks to more than" in _err(capsys)
    assert not db.exists()


def test_a_bad_file_among_good_ones_stores_nothing_and_is_named(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_csv(here / "good.csv", [VALID])
    bad = write_no_price(here / "bad.csv")
    db = here / "new.db"
    assert run_app(["ingest", str(good), str(bad), "--db", f"sqlite:///{db}"]) == 1
    assert not db.exists()
    err = _err(capsys)
    assert err.count("Error:") == 1 and "Traceback" not in err
    assert "nothing was stored: 1 of 2 files cannot be ingested" in err
    assert f"- {bad}: required column 'price' is missing in bad.csv" in err
    assert "good.csv" not in err

    # an existing store is left as it was
    other = write_csv(here / "other.csv", [VALID.replace("489434", "500000")])
    assert run_app(["ingest", str(other), "--db", f"sqlite:///{db}"]) == 0
    capsys.readouterr()
    before = _counts(db)
    assert run_app(["ingest", str(good), str(bad), "--db", f"sqlite:///{db}"]) == 1
    assert "bad.csv" in _err(capsys)
    assert _counts(db) == before == (1, 1)


def test_every_refused_file_is_named_at_once(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_csv(here / "good.csv", [VALID])
    bad = write_no_price(here / "bad.csv")
    empty = here / "empty.csv"
    empty.write_bytes(b"")
    pdf = here / "report.csv"
    pdf.write_bytes(b"%PDF-1.7\n" + bytes(range(256)))
    missing = here / "nosuch.csv"
    db = here / "new" / "store.db"
    args = ["ingest", str(bad), str(good), str(empty), str(pdf), str(missing)]
    assert run_app([*args, "--db", f"sqlite:///{db}"]) == 1
    err = _err(capsys)
    assert "4 of 5 files cannot be ingested" in err
    assert f"- {bad}: required column 'price'" in err
    assert f"- {empty}: file is empty" in err
    assert f"- {pdf}: {pdf} is a PDF document" in err
    assert f"- {missing}: file not found" in err
    assert not db.exists() and not db.parent.exists()


def _truth_like(path: Path) -> Path:
    pl.DataFrame(
        {"customer_id": ["13085"], "country": ["United Kingdom"], "oracle_expected_spend": [1.5]}
    ).write_parquet(path)
    return path


def test_the_ground_truth_beside_a_synthetic_export_is_refused_with_a_hint(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = here / "demo"
    demo.mkdir()
    raw = write_csv(demo / "online_retail_synthetic.csv", [VALID])
    truth = _truth_like(demo / "online_retail_synthetic.csv.truth.parquet")
    db = here / "demo.db"
    assert run_app(["ingest", *map(str, sorted(demo.iterdir())), "--db", f"sqlite:///{db}"]) == 1
    err = _err(capsys)
    assert f"- {truth}: looks like the ground truth that clv generate writes beside " in err
    assert "not a transaction log: ingest online_retail_synthetic.csv without it" in err
    assert not db.exists()
    assert run_app(["ingest", str(raw), "--db", f"sqlite:///{db}"]) == 0


def test_column_mapping_is_applied_to_every_file_checked(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = HEADER_II.replace("Customer ID", "Client Ref")
    one = write_csv(here / "one.csv", [VALID], header=header)
    two = write_csv(here / "two.csv", [VALID.replace("489434", "489435")], header=header)
    db = here / "s.db"
    mapping = ["--column", "customer_id=Client Ref"]
    assert run_app(["ingest", str(one), str(two), *mapping, "--db", f"sqlite:///{db}"]) == 0
    assert _counts(db) == (2, 2)
    capsys.readouterr()

    plain = write_csv(here / "plain.csv", [VALID.replace("489434", "489436")])
    assert run_app(["ingest", str(one), str(plain), *mapping, "--db", f"sqlite:///{db}"]) == 1
    err = _err(capsys)
    assert f"- {plain}: column 'Client Ref' given for field 'customer_id' is not in plain.csv" in (
        err
    )
    assert _counts(db) == (2, 2)


def test_a_file_without_dates_is_said_to_have_empty_cells_not_unparsed_ones(
    tmp_path: Path, capsys
) -> None:
    blank = VALID.replace("2009-12-01 07:45:00", "")
    path = write_csv(tmp_path / "no_dates.csv", [blank, blank.replace("489434", "489435")])
    assert run_app(["ingest", str(path), "--db", f"sqlite:///{tmp_path / 's.db'}"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "no_dates.csv: most rows have no date (empty cells)." in out
    assert "could not be parsed" not in out
    assert "2 rows of the 2 rejected as BAD_DATE have no date at all (empty)" in out


def test_a_later_file_failing_names_the_files_already_stored(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    # the pre-flight reads a file's first rows only: a ragged line further down fails the
    # second file after the first one was stored, which the error did not say
    from retail_clv.ingest import readers

    monkeypatch.setattr(readers, "HEADER_BYTES", 300)
    good = write_csv(tmp_path / "good.csv", [VALID])
    rows = [VALID.replace("489434", f"49{i:04d}") for i in range(10)]
    ragged = write_csv(tmp_path / "ragged.csv", [*rows, VALID.replace(",12,", ",12,,")])
    db = tmp_path / "store.db"
    assert run_app(["ingest", str(good), str(ragged), "--db", f"sqlite:///{db}"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    flat = "".join(err.split())  # rich wraps the file's long path anywhere
    ragged_line = (
        "ragged.csv is not a readable CSV file: line 12 has 9 fields, the header 8; a value "
        "holding the separator ',' without quotes around it?"
    )
    assert "".join(ragged_line.split()) in flat
    # the store given with --db is named again: without it the undo hit the default store
    expected = (
        "Stored before this file, and kept: good.csv (ingest run 1); fix this file and "
        f"ingest it alone, or take those out again with clv undo-ingest 1 --db sqlite:///{db}"
    )
    assert "".join(expected.split()) in "".join(err.split())  # rich wraps long paths anywhere
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM transactions")).scalar() == 1
    engine.dispose()


def test_the_report_names_the_column_read_for_each_field(tmp_path: Path, capsys) -> None:
    # a display-name column ("Customer") beat the e-mail column, and nothing said which was read
    path = tmp_path / "shop.csv"
    path.write_text(
        "Order Number,Order Date,Customer,Customer Email,SKU,Item Name,Quantity,Item Price\n"
        "1001,2011-01-05 10:00,John Smith,john@a.example,A1,MUG,2,3.50\n"
        "1002,2011-01-06 10:00,John Smith,js@b.example,A1,MUG,1,3.50\n"
    )
    assert run_app(["ingest", str(path), "--db", f"sqlite:///{tmp_path / 's.db'}"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "shop.csv: columns read: invoice = 'Order Number', stock_code = 'SKU', description = "
        "'Item Name', quantity = 'Quantity', invoice_date = 'Order Date', price = 'Item Price', "
        "customer_id = 'Customer Email'" in out
    )
    engine = sa.create_engine(f"sqlite:///{tmp_path / 's.db'}")
    with engine.connect() as conn:  # two people with one name stay two customers
        assert conn.execute(sa.text("SELECT count(*) FROM customers")).scalar() == 2
    engine.dispose()


def test_month_first_forces_the_reading_the_compact_rule_would_not_take(
    tmp_path: Path, capsys
) -> None:
    lines = [  # 2 days apart day-first, 59 month-first: read day-first unless told
        VALID.replace("2009-12-01 07:45:00", "01/03/2010 10:00"),
        VALID.replace("2009-12-01 07:45:00", "03/03/2010 10:00").replace("489434", "489435"),
    ]
    path = write_csv(tmp_path / "us.csv", lines)
    db = tmp_path / "m.db"
    assert run_app(["ingest", str(path), "--month-first", "--db", f"sqlite:///{db}"]) == 0
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        first = conn.execute(sa.text("SELECT min(invoice_date) FROM transactions")).scalar()
    engine.dispose()
    assert str(first).startswith("2010-01-03 10:00")
    both = ["ingest", str(path), "--month-first", "--day-first", "--db", f"sqlite:///{db}"]
    assert run_app(both) == 2
    assert "give --day-first or --month-first, not both" in capsys.readouterr().err


def test_sheet_reads_only_the_chosen_sheet_of_a_workbook(tmp_path: Path, capsys) -> None:
    # a 'Returns' sheet that names most required columns stopped the whole workbook, and no
    # option could leave it out
    from tests.ingest.test_pipeline import _orders, _workbook

    returns = _orders(3).drop("Price").rename({"Description": "Reason"})
    path = _workbook(tmp_path / "shop.xlsx", {"Orders": _orders(2), "Returns": returns})
    db = f"sqlite:///{tmp_path / 's.db'}"
    assert run_app(["ingest", str(path), "--db", db]) == 1  # refused as before, with the hint
    assert "clv ingest --sheet Orders FILE" in " ".join(capsys.readouterr().err.split())
    assert run_app(["ingest", str(path), "--sheet", "Orders", "--db", db]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "sheet 'Returns' (3 rows) was skipped, not read as transactions: not chosen with "
        "--sheet" in out
    )
    engine = sa.create_engine(db)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM transactions")).scalar() == 2
    engine.dispose()
