"""Listing and undoing ingest runs (``store.runs``, ``clv ingest-runs``, ``clv undo-ingest``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from retail_clv.cli import app
from retail_clv.cli.base import run_app
from retail_clv.errors import StoreError
from retail_clv.ingest.pipeline import ingest_files
from retail_clv.store import schema
from retail_clv.store.db import get_engine
from retail_clv.store.load import table_counts
from retail_clv.store.runs import list_ingest_runs, undo_ingest_run

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
A = "489434,85048,BALL,12,2009-12-01 07:45:00,6.95,13085,United Kingdom"
B = "489435,22041,CARD,4,2009-12-02 08:00:00,1.25,13086,France"
C_BAD = "489436,22041,CARD,-4,2009-12-02 08:00:00,1.25,13087,France"


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return table_counts(conn, ["transactions", "cancellations", "rejected_data", "customers"])


def test_undo_takes_the_newest_runs_rows_out_and_keeps_its_record(
    tmp_path: Path, store_url: str
) -> None:
    engine = get_engine(store_url)
    ingest_files([write(tmp_path / "first.csv", A)], engine, progress=False)
    before = counts(engine)
    # the same sale again with another date spelling (not a duplicate by raw text), a new
    # customer and a rejected row (a customer's refund: also kept as a cancellation)
    again = A.replace("2009-12-01 07:45:00", "12/1/2009 7:45")
    earlier = A.replace("489434", "489400").replace("2009-12-01 07:45:00", "2009-11-20 10:00:00")
    ingest_files([write(tmp_path / "again.csv", again, earlier, B, C_BAD)], engine, progress=False)
    assert counts(engine)["transactions"] == 4
    first, second = sorted(run["id"] for run in list_ingest_runs(engine))
    from retail_clv.api.state import StoreCache

    signature = StoreCache.signature(engine)
    deleted = undo_ingest_run(engine, second)
    assert StoreCache.signature(engine) != signature  # a running API reloads its frames
    assert deleted == {"transactions": 3, "cancellations": 1, "rejected_data": 1, "customers": 1}
    assert counts(engine) == before  # customer 13086 had no other sale
    with engine.connect() as conn:
        first_seen = conn.execute(
            sa.select(schema.customers.c.first_seen).where(
                schema.customers.c.customer_id == "13085"
            )
        ).scalar_one()
    assert first_seen == dt.datetime(2009, 12, 1, 7, 45)
    runs = {run["id"]: run["status"] for run in list_ingest_runs(engine)}
    assert runs == {first: "succeeded", second: "undone"}
    with pytest.raises(StoreError, match=f"ingest run {second} was already undone"):
        undo_ingest_run(engine, second)
    engine.dispose()


def test_an_older_run_cannot_be_undone_before_the_newer_ones(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'store.db'}")
    ingest_files([write(tmp_path / "a.csv", A)], engine, progress=False)
    ingest_files([write(tmp_path / "b.csv", A, B)], engine, progress=False)  # A: a duplicate
    first, second = sorted(run["id"] for run in list_ingest_runs(engine))
    with pytest.raises(
        StoreError,
        match=rf"ingest run {first} has later runs that skipped rows as duplicates \({second}\)",
    ):
        undo_ingest_run(engine, first)
    assert counts(engine)["transactions"] == 2  # nothing was removed
    with pytest.raises(StoreError, match="there is no ingest run 99"):
        undo_ingest_run(engine, 99)
    engine.dispose()


def test_later_runs_without_duplicates_do_not_block_an_undo(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'store.db'}")
    ingest_files([write(tmp_path / "a.csv", A)], engine, progress=False)
    ingest_files([write(tmp_path / "b.csv", B)], engine, progress=False)  # nothing shared
    first, _ = sorted(run["id"] for run in list_ingest_runs(engine))
    assert undo_ingest_run(engine, first)["transactions"] == 1
    assert counts(engine)["transactions"] == 1
    engine.dispose()


def test_cli_lists_and_undoes_runs(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    assert (
        runner.invoke(app, ["ingest", str(write(tmp_path / "a.csv", A)), "--db", url]).exit_code
        == 0
    )
    listing = runner.invoke(app, ["ingest-runs", "--db", url])
    assert listing.exit_code == 0 and "a.csv" in listing.output and "succeeded" in listing.output
    undone = runner.invoke(app, ["undo-ingest", "1", "--db", url])
    assert undone.exit_code == 0, undone.output
    said = " ".join(undone.output.split())
    assert said.startswith(
        "Ingest run 1 undone: removed 1 purchase line, 0 cancellations, 0 rejected rows and "
        "1 customer left without any purchase or cancellation."
    )
    assert "run clv train and clv predict again" in said
    assert run_app(["undo-ingest", "1", "--db", url]) == 1
    assert "Error: ingest run 1 was already undone" in capsys.readouterr().err
    assert run_app(["ingest-runs", "--db", f"sqlite:///{tmp_path / 'no.db'}"]) == 1
    err = capsys.readouterr().err
    assert "there is no store at" in err and "Traceback" not in err


def test_an_undo_waits_for_an_ingest_that_is_checking_duplicates(store_url: str, tmp_path) -> None:
    import threading

    from retail_clv.store.runs import lock_for_ingest

    engine = get_engine(store_url)
    ingest_files([write(tmp_path / "a.csv", A)], engine, progress=False)
    [run] = [r["id"] for r in list_ingest_runs(engine)]
    done = threading.Event()
    with engine.connect() as ingest, ingest.begin():
        lock_for_ingest(ingest)  # an ingest between its duplicate check and its commit
        undo = threading.Thread(target=lambda: (undo_ingest_run(engine, run), done.set()))
        undo.start()
        assert not done.wait(1.0)  # the undo waits for the ingest
    undo.join(timeout=30)
    assert done.is_set() and counts(engine)["transactions"] == 0
    engine.dispose()


def test_an_ingest_waits_for_another_one_in_flight(store_url: str, tmp_path) -> None:
    import threading

    from retail_clv.store.runs import lock_for_ingest

    engine = get_engine(store_url)
    ingest_files([write(tmp_path / "a.csv", A)], engine, progress=False)  # creates the schema
    done = threading.Event()
    second = write(tmp_path / "b.csv", B)
    with engine.connect() as first, first.begin():
        lock_for_ingest(first)  # an ingest between its duplicate check and its commit
        other = threading.Thread(
            target=lambda: (ingest_files([second], engine, progress=False), done.set())
        )
        other.start()
        assert not done.wait(1.0)  # the second ingest waits for the first
    other.join(timeout=30)
    assert done.is_set() and counts(engine)["transactions"] == 2
    engine.dispose()


def test_two_ingests_adding_the_same_new_product_at_once_both_succeed(
    store_url: str, tmp_path
) -> None:
    """Two exports of one shop sharing new products, stores and customers, run at once."""
    from concurrent.futures import ThreadPoolExecutor

    engine = get_engine(store_url)
    ingest_files([write(tmp_path / "seed.csv", A)], engine, progress=False)
    files = [
        write(
            tmp_path / f"part{k}.csv",
            *[
                f"{600000 + 100 * k + i},{22000 + i},NEW,1,2010-0{k + 1}-0{i % 9 + 1} 10:00:00,"
                f"2.5,{7000 + i},Norway"
                for i in range(40)
            ],
        )
        for k in range(4)
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        reports = [
            f.result()
            for f in [pool.submit(ingest_files, [path], engine, progress=False) for path in files]
        ]
    assert [r.rows_loaded for [r] in reports] == [40] * 4
    assert counts(engine)["transactions"] == 1 + 160
    engine.dispose()


def first_purchase(engine: sa.Engine, customer_id: str) -> tuple[str | None, dt.datetime]:
    """Return ``(country, first_seen)`` of a stored customer."""
    c = schema.customers
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(c.c.country, c.c.first_seen).where(c.c.customer_id == customer_id)
        ).one()
    return row.country, row.first_seen


def line(invoice: int, when: str, country: str, customer: str = "900") -> str:
    return f"{invoice},85048,BALL,1,{when},6.95,{customer},{country}"


def test_undoing_the_run_of_the_first_purchase_restores_its_date_and_country(
    tmp_path: Path, store_url: str
) -> None:
    engine = get_engine(store_url)
    later = [line(1, "2010-03-01 10:00:00", "France"), line(2, "2010-04-01 10:00:00", "France")]
    ingest_files([write(tmp_path / "later.csv", *later)], engine, progress=False)
    earlier = line(3, "2010-01-01 10:00:00", "Germany")
    ingest_files([write(tmp_path / "earlier.csv", earlier)], engine, progress=False)
    assert first_purchase(engine, "900") == ("Germany", dt.datetime(2010, 1, 1, 10))
    first, second = sorted(run["id"] for run in list_ingest_runs(engine))
    undo_ingest_run(engine, second)
    assert first_purchase(engine, "900") == ("France", dt.datetime(2010, 3, 1, 10))
    engine.dispose()


def test_an_undo_breaks_ties_of_the_first_purchase_time_as_ingestion_does(
    tmp_path: Path, store_url: str
) -> None:
    """Lines of the same earliest time: the one stored first wins (runs in order, file order)."""
    engine = get_engine(store_url)
    t = "2010-03-01 10:00:00"
    ingest_files([write(tmp_path / "a.csv", line(1, t, "Germany"))], engine, progress=False)
    # the same time again, in a later run: the stored first purchase stays
    ingest_files(
        [write(tmp_path / "b.csv", line(2, t, "Spain"), line(3, t, "Austria"))],
        engine,
        progress=False,
    )
    assert first_purchase(engine, "900") == ("Germany", dt.datetime(2010, 3, 1, 10))
    earlier = line(4, "2010-01-01 10:00:00", "France")
    ingest_files([write(tmp_path / "c.csv", earlier)], engine, progress=False)
    assert first_purchase(engine, "900")[0] == "France"
    first, second, third = sorted(run["id"] for run in list_ingest_runs(engine))
    undo_ingest_run(engine, third)
    assert first_purchase(engine, "900") == ("Germany", dt.datetime(2010, 3, 1, 10))
    undo_ingest_run(engine, first)  # now the first of run 2's lines, in file order
    assert first_purchase(engine, "900") == ("Spain", dt.datetime(2010, 3, 1, 10))
    engine.dispose()


def test_a_customer_left_with_cancellations_only_keeps_first_purchase_and_country(
    tmp_path: Path, store_url: str
) -> None:
    engine = get_engine(store_url)
    bought = line(1, "2010-03-01 10:00:00", "France")
    ingest_files([write(tmp_path / "a.csv", bought)], engine, progress=False)
    returned = "C2,85048,BALL,-1,2010-03-05 10:00:00,6.95,900,France"
    other = line(3, "2010-03-05 10:00:00", "Spain", customer="901")
    ingest_files([write(tmp_path / "b.csv", returned, other)], engine, progress=False)
    first, _ = sorted(run["id"] for run in list_ingest_runs(engine))
    assert undo_ingest_run(engine, first)["customers"] == 0
    assert first_purchase(engine, "900") == ("France", dt.datetime(2010, 3, 1, 10))
    engine.dispose()
