import datetime as dt
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from retail_clv.errors import StoreError
from retail_clv.ingest.pipeline import ingest_files
from retail_clv.store import load, queries, schema
from retail_clv.store.db import get_engine
from retail_clv.store.migrations import MIGRATIONS, current_version
from retail_clv.store.queries import (
    CANCELLATIONS_SCHEMA,
    PURCHASES_SCHEMA,
    read_cancellations,
    read_purchases,
    read_rejections,
)

from ..ingest.conftest import VALID, write_csv, write_parquet

LINES = [
    VALID,
    VALID,
    "C489449,85048,15CM CHRISTMAS GLASS BALL 20 LIGHTS,-2,2009-12-02 10:33:00,6.95,13085,"
    "United Kingdom",
    "489435,22350,CAT BOWL ,12,2009-12-01 07:46:00,2.55,,United Kingdom",
    "489436,POST,POSTAGE,1,2009-12-03 09:06:00,18.0,12680.0,France",
    "489437,22087,PAPER BUNTING WHITE LACE,6,2009-12-03 09:06:00,2.95,12680,France",
]


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return load.table_counts(
            conn,
            ["transactions", "cancellations", "rejected_data", "customers", "products", "stores"],
        )


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    eng = get_engine(f"sqlite:///{tmp_path / 'sub' / 'store.db'}")
    yield eng
    eng.dispose()


def test_get_engine_creates_folder_and_records_migrations(tmp_path: Path) -> None:
    eng = get_engine(f"sqlite:///{tmp_path / 'new' / 'dir' / 'clv.db'}")
    assert (tmp_path / "new" / "dir" / "clv.db").exists()
    with eng.connect() as conn:
        assert current_version(conn) == schema.SCHEMA_VERSION == MIGRATIONS[-1].version
        names = sa.inspect(conn).get_table_names()
        rows = conn.execute(sa.select(schema.schema_migrations)).all()
    assert {"transactions", "rejected_data", "ingest_runs", "products", "stores"} <= set(names)
    assert [(r.version, r.name) for r in rows] == [(m.version, m.name) for m in MIGRATIONS]
    # Opening again applies nothing twice.
    get_engine(f"sqlite:///{tmp_path / 'new' / 'dir' / 'clv.db'}").dispose()
    with eng.connect() as conn:
        assert conn.execute(
            sa.select(sa.func.count()).select_from(schema.schema_migrations)
        ).scalar() == len(MIGRATIONS)
    eng.dispose()


def test_get_engine_default_url_comes_from_settings(tmp_path: Path) -> None:
    eng = get_engine()
    assert str(tmp_path) in str(eng.url)
    eng.dispose()


def test_must_exist_refuses_a_missing_sqlite_file_and_creates_nothing(tmp_path: Path) -> None:
    typo = tmp_path / "typo" / "clv.db"
    with pytest.raises(StoreError, match="there is no store at .*ingest data first"):
        get_engine(f"sqlite:///{typo}", must_exist=True)
    assert not typo.parent.exists()
    get_engine(f"sqlite:///{typo}").dispose()  # created by default (ingest)
    get_engine(f"sqlite:///{typo}", must_exist=True).dispose()  # and then accepted


def test_a_home_relative_sqlite_path_is_the_file_under_home(tmp_path: Path, monkeypatch) -> None:
    # the folder was created under $HOME but SQLite was given "~/..." and opened ./~/shop.db
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    engine = get_engine("sqlite:///~/shop/clv.db")
    engine.dispose()
    assert (tmp_path / "home" / "shop" / "clv.db").is_file()
    assert not (tmp_path / "~").exists()
    get_engine("sqlite:///~/shop/clv.db", must_exist=True).dispose()


def test_bad_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="invalid database URL"):
        get_engine("not a url")


@pytest.mark.parametrize("url", ["", "  "])
def test_an_empty_url_is_a_store_error_not_the_default_store(url: str) -> None:
    # `clv ingest --db ""` silently wrote into CLV_DATABASE_URL's store
    with pytest.raises(StoreError, match="the database URL is empty"):
        get_engine(url)


def test_a_postgres_scheme_url_names_the_right_scheme() -> None:
    with pytest.raises(StoreError, match=r"PostgreSQL URLs start with postgresql\+psycopg://"):
        get_engine("postgres+psycopg://u@h/db")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://clv@myserver:pw@myserver.postgres.database.azure.com:5432/db",
        "postgresql+psycopg://me@example.com:pw@localhost/db",
        "postgresql+psycopg://u:pw@localhost/db?application_name=clv@shop",
        "postgresql+psycopg://u:pw@localhost/my@db",
    ],
)
def test_an_at_sign_outside_the_password_is_accepted(url: str, monkeypatch) -> None:
    # Azure's user@server user names, e-mail user names, query values and database names
    created = []
    monkeypatch.setattr(sa, "create_engine", lambda url, **kw: created.append(url) or 1 / 0)
    with pytest.raises(ZeroDivisionError):  # reached the engine: not refused
        get_engine(url)
    assert created[0].password == "pw"


def test_the_postgres_scheme_of_hosting_providers_is_read_as_psycopg(monkeypatch) -> None:
    # postgres://... (as hosting providers hand it out) was refused
    created = []
    monkeypatch.setattr(sa, "create_engine", lambda url, **kw: created.append(url) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        get_engine("postgres://u:p@localhost:5433/shop")
    [url] = created
    assert (url.drivername, url.host, url.port, url.database) == (
        "postgresql+psycopg",
        "localhost",
        5433,
        "shop",
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:Qz7@localhost/shop", r"unsupported database 'mysql'"),
        ("postgresql+psycopg://clv:Qz7@Qz8@localhost/shop", r"contains '@': percent-encode it"),
        # an '@' then a '/' in the password: parsed as host 'Qz8', its tail printed
        ("postgresql+psycopg://clv:Qz7@Qz8/x@localhost:5432/shop", r"contains '@': percent-encode"),
        # an '@' then a ':' (a port that is no number): a ValueError traceback
        ("postgresql+psycopg://clv:Qz7@Qz8:w/rd@localhost/shop", r"'@', ':', .* percent-encoded"),
        ("postgresql+psycopg://u@localhost:5x/shop?password=Qz7", r"with a port made of digits"),
        (
            "postgresql+psycopg://clv:Qz7:w/rd@localhost:54x/shop",
            r"invalid database URL .*clv:\*\*\*@",
        ),
        ("postgresql+psycopg://clv:Qz7@localhost:5432x/shop", r"with a port made of digits"),
        ("postgresql+pg8000://u:Qz7@localhost/shop", r"psycopg 3 driver installed with"),
    ],
)
def test_url_mistakes_are_one_clear_store_error(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as caught:
        get_engine(url)
    assert "Qz" not in str(caught.value)  # no part of a password is echoed


def test_a_database_error_while_writing_is_one_store_error(
    tmp_path: Path, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    def clash(*args, **kwargs):
        raise sqlite3.IntegrityError("UNIQUE constraint failed: transactions.row_key")

    monkeypatch.setattr(load, "write_result", clash)
    path = write_csv(tmp_path / "a.csv", LINES)
    with pytest.raises(StoreError) as caught:
        ingest_files([path], engine, progress=False)
    message = str(caught.value)
    assert message.startswith("writing a.csv failed, nothing of it was stored: IntegrityError")
    assert "another ingest was probably writing the same rows" in message
    assert counts(engine)["transactions"] == 0


def test_nul_characters_are_removed_with_a_warning(tmp_path: Path, engine: sa.Engine) -> None:
    lines = [
        LINES[0].replace("GLASS BALL", "GLASS\x00BALL"),
        LINES[5].replace("12680", "12\x00680"),
    ]
    path = write_parquet(tmp_path / "nul.parquet", lines)
    [report] = ingest_files([path], engine, progress=False)
    assert report.rows_loaded == 2
    [warning] = [w for w in report.warnings if "NUL" in w]
    assert warning.startswith("2 cells held a NUL character")
    with engine.connect() as conn:
        ids = sorted(conn.execute(sa.select(schema.transactions.c.customer_id)).scalars())
    assert ids == ["12680", "13085"]


@pytest.mark.parametrize("line", [1, 3_000], ids=["early", "late"])
def test_a_stray_nul_in_a_csv_is_removed_with_a_warning_wherever_it_is(
    tmp_path: Path, engine: sa.Engine, line: int
) -> None:
    """A NUL near the top was read as a sign of a binary file; further down it was removed."""
    filler = [LINES[5].replace("489437", str(700000 + i)) for i in range(3_000)]
    filler[line - 1] = filler[line - 1].replace("LACE", "LA\x00CE")
    [report] = ingest_files([write_csv(tmp_path / "nul.csv", filler)], engine, progress=False)
    assert report.rows_loaded == 3_000
    [warning] = [w for w in report.warnings if "NUL" in w]
    assert warning.startswith("1 cells held a NUL character")


def test_a_csv_with_classic_mac_line_ends_is_read_like_any_other(
    tmp_path: Path, engine: sa.Engine
) -> None:
    """CR-only line ends (old Mac exports) crashed the header search with a traceback."""
    unix = write_csv(tmp_path / "unix.csv", LINES)
    mac = tmp_path / "mac.csv"
    mac.write_bytes(unix.read_bytes().replace(b"\n", b"\r"))
    [report] = ingest_files([mac], engine, progress=False)
    assert (report.rows_read, report.rows_loaded) == (6, 3)
    # the same sales with Unix line ends are the same rows
    [again] = ingest_files([unix], engine, progress=False)
    assert again.rows_duplicate == again.rows_read == 6


def test_ingest_stores_rows_and_reads_them_back(tmp_path: Path, engine: sa.Engine) -> None:
    path = write_csv(tmp_path / "a.csv", LINES)
    [report] = ingest_files([path], engine, progress=False)
    assert (report.rows_loaded, report.rows_rejected, report.rows_duplicate) == (3, 2, 1)
    assert counts(engine) == {
        "transactions": 3,
        "cancellations": 1,
        "rejected_data": 2,
        "customers": 2,
        "products": 3,
        "stores": 2,
    }
    purchases = read_purchases(engine)
    assert purchases.schema == pl.Schema(PURCHASES_SCHEMA)
    assert purchases["invoice_date"].to_list()[0] == dt.datetime(2009, 12, 1, 7, 45)
    assert sorted(purchases["customer_id"].unique()) == ["12680", "13085"]
    assert set(purchases["country"]) == {"United Kingdom", "France"}
    cancellations = read_cancellations(engine)
    assert cancellations.schema == pl.Schema(CANCELLATIONS_SCHEMA)
    assert cancellations["quantity"].to_list() == [-2]
    with engine.connect() as conn:
        run = conn.execute(sa.select(schema.ingest_runs)).one()
        customer = conn.execute(
            sa.select(schema.customers).where(schema.customers.c.customer_id == "12680")
        ).one()
    assert run.status == "succeeded" and run.rows_read == 6 and run.rows_duplicate == 1
    assert run.reason_counts == {
        "MISSING_CUSTOMER_ID": 1,
        "CANCELLATION": 1,
        "NON_POSITIVE_QUANTITY": 1,
    }
    assert len(run.sha256) == 64
    assert customer.country == "France" and customer.first_seen == dt.datetime(2009, 12, 3, 9, 6)


def test_purchases_carry_the_customer_s_country_not_the_store_s(
    tmp_path: Path, engine: sa.Engine
) -> None:
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country,Store"
    lines = [
        f"{n},85048,GLASS BALL,1,2010-01-0{n} 10:00:00,5.0,{cid},{country},Paris"
        for n, cid, country in [(1, "F1", "France"), (2, "F2", "France"), (3, "U1", "UK")]
    ]
    ingest_files([write_csv(tmp_path / "stores.csv", lines, header=header)], engine, progress=False)
    with engine.connect() as conn:
        assert conn.execute(sa.select(schema.stores.c.country)).scalars().all() == ["France"]
    purchases = read_purchases(engine)
    assert dict(zip(purchases["customer_id"], purchases["country"], strict=True)) == {
        "F1": "France",
        "F2": "France",
        "U1": "UK",
    }


def test_an_earlier_first_purchase_ingested_later_brings_its_country(
    tmp_path: Path, engine: sa.Engine
) -> None:
    later = "500001,85048,BALL,1,2011-03-01 10:00:00,5.0,777,United Kingdom"
    earlier = "500000,85048,BALL,1,2010-03-01 10:00:00,5.0,777,France"
    ingest_files([write_csv(tmp_path / "2011.csv", [later])], engine, progress=False)
    ingest_files([write_csv(tmp_path / "2010.csv", [earlier])], engine, progress=False)
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(schema.customers.c.country, schema.customers.c.first_seen)
        ).one()
    assert tuple(row) == ("France", dt.datetime(2010, 3, 1, 10))
    assert set(read_purchases(engine)["country"]) == {"France"}


def test_same_file_twice_adds_nothing(tmp_path: Path, engine: sa.Engine) -> None:
    path = write_csv(tmp_path / "a.csv", LINES)
    ingest_files([path], engine, progress=False)
    before = counts(engine)
    [again] = ingest_files([path], engine, progress=False)
    assert (again.rows_loaded, again.rows_rejected, again.rows_duplicate) == (0, 0, 6)
    assert counts(engine) == before


def test_the_same_sales_in_another_export_are_loaded_with_a_warning(
    tmp_path: Path, engine: sa.Engine
) -> None:
    # The first file's two purchases, written as another export would: customer id as a
    # float, dotted day-first dates, another description. Raw text differs, the sale does not.
    first = write_csv(tmp_path / "first.csv", [LINES[0], LINES[5]])
    again = [
        "489434,85048,15CM CHRISTMAS GLASS BALL 20 LIGHTS (RED),12,01.12.2009 07:45,6.95,"
        "13085.0,United Kingdom",
        "489437,22087,PAPER BUNTING,6,03.12.2009 09:06,2.95,12680.0,France",
        "489437,22087,PAPER BUNTING,7,03.12.2009 09:06,2.95,12680.0,France",  # not a repeat
    ]
    second = write_csv(tmp_path / "second.csv", again)
    [clean] = ingest_files([first], engine, progress=False)
    assert not [w for w in clean.warnings if "repeat sales" in w]
    [report] = ingest_files([second], engine, progress=False)
    assert (report.rows_loaded, report.rows_duplicate) == (3, 0)
    [warning] = [w for w in report.warnings if "repeat sales" in w]
    assert warning.startswith("2 of the 3 new purchase lines repeat sales already in the store")
    assert counts(engine)["transactions"] == 5


def test_repeat_sales_are_matched_to_the_minute(tmp_path: Path, engine: sa.Engine) -> None:
    # one export writes seconds, the other only minutes: the same sale all the same
    seconds = LINES[5].replace("09:06:00", "09:06:41")
    ingest_files([write_csv(tmp_path / "with_seconds.csv", [seconds])], engine, progress=False)
    minutes = "489437,22087,PAPER BUNTING,6,03.12.2009 09:06,2.95,12680,France"
    later = "489437,22087,PAPER BUNTING,6,03.12.2009 09:07,2.95,12680,France"
    [report] = ingest_files(
        [write_csv(tmp_path / "minutes.csv", [minutes, later])], engine, progress=False
    )
    [warning] = [w for w in report.warnings if "repeat sales" in w]
    assert warning.startswith("1 of the 2 new purchase lines repeat sales already in the store")


def test_repeat_sales_match_order_numbers_written_with_a_hash(
    tmp_path: Path, engine: sa.Engine
) -> None:
    # a Shopify export names the order "#489437", the shop's own export "489437"
    shopify = LINES[5].replace("489437,", "#489437,")
    ingest_files([write_csv(tmp_path / "shopify.csv", [shopify])], engine, progress=False)
    [report] = ingest_files([write_csv(tmp_path / "own.csv", [LINES[5]])], engine, progress=False)
    [warning] = [w for w in report.warnings if "repeat sales" in w]
    assert warning.startswith("1 of the 1 new purchase lines repeat sales already in the store")


def test_rows_already_stored_from_another_file_are_duplicates(
    tmp_path: Path, engine: sa.Engine
) -> None:
    first = write_csv(tmp_path / "first.csv", LINES[:3])
    later = "489500,22087,PAPER BUNTING WHITE LACE,6,2009-12-01 06:00:00,2.95,13085,United Kingdom"
    second = write_csv(tmp_path / "second.csv", [*LINES[2:5], later])
    ingest_files([first], engine, progress=False)
    [report] = ingest_files([second], engine, progress=False)
    # LINES[2] (a cancellation, stored as rejected) is a duplicate of the first file's row.
    assert report.rows_duplicate == 1
    assert (report.rows_loaded, report.rows_rejected) == (2, 1)
    with engine.connect() as conn:
        first_seen = conn.execute(
            sa.select(schema.customers.c.first_seen).where(
                schema.customers.c.customer_id == "13085"
            )
        ).scalar_one()
    assert first_seen == dt.datetime(2009, 12, 1, 6, 0)  # moved earlier by the second file


def test_failure_half_way_leaves_the_store_as_it_was(
    tmp_path: Path, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_files([write_csv(tmp_path / "a.csv", LINES[:2])], engine, progress=False)
    before = counts(engine)
    with engine.connect() as conn:
        runs_before = conn.execute(
            sa.select(sa.func.count()).select_from(schema.ingest_runs)
        ).scalar()

    real = load._bulk_insert_indexed

    def crash_on_rejected(conn, table, frame, constants=None):
        if table.name == "rejected_data":
            raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error (simulated)"))
        return real(conn, table, frame, constants)

    monkeypatch.setattr(load, "_bulk_insert_indexed", crash_on_rejected)
    with pytest.raises(StoreError, match="nothing of it was stored.*simulated"):
        ingest_files([write_csv(tmp_path / "b.csv", LINES[2:])], engine, progress=False)
    assert counts(engine) == before
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(schema.ingest_runs)).scalar()
            == runs_before
        )
    monkeypatch.undo()
    [report] = ingest_files([write_csv(tmp_path / "b.csv", LINES[2:])], engine, progress=False)
    assert report.rows_loaded == 2  # the same file goes through once the fault is gone


def test_mismatch_between_report_and_rows_written_rolls_back(
    tmp_path: Path, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = load._bulk_insert_indexed

    def lose_a_row(conn, table, frame, constants=None):
        if table.name == "transactions":
            frame = frame.head(frame.height - 1)
        return real(conn, table, frame, constants)

    monkeypatch.setattr(load, "_bulk_insert_indexed", lose_a_row)
    with pytest.raises(StoreError, match="differ from the report"):
        ingest_files([write_csv(tmp_path / "a.csv", LINES)], engine, progress=False)
    assert counts(engine)["transactions"] == 0


def test_bulk_path_rebuilds_indexes_inside_the_transaction(
    tmp_path: Path, engine: sa.Engine, monkeypatch
) -> None:
    monkeypatch.setattr(load, "_REBUILD_MIN_ROWS", 1)
    ingest_files([write_csv(tmp_path / "a.csv", LINES)], engine, progress=False)
    with engine.connect() as conn:
        indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("transactions")}
    assert {"ux_transactions_row_key", "ix_transactions_customer_date"} <= indexes
    # The unique index still guards against a duplicate hash sneaking in.
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        row = conn.execute(sa.select(schema.transactions).limit(1)).mappings().one()
        conn.execute(schema.transactions.insert().values({**row, "id": None}))


def test_read_rejections_filters_by_reason(tmp_path: Path, engine: sa.Engine) -> None:
    ingest_files([write_csv(tmp_path / "a.csv", LINES)], engine, progress=False)
    total, page = read_rejections(engine, reason="CANCELLATION")
    assert total == 1
    assert page["raw_invoice"].to_list() == ["C489449"]
    assert page["reasons"].to_list() == ["CANCELLATION|NON_POSITIVE_QUANTITY"]
    total_all, _ = read_rejections(engine)
    assert total_all == 2
    assert read_rejections(engine, reason="ZERO_PRICE")[0] == 0


def test_empty_store_reads_empty_typed_frames(engine: sa.Engine) -> None:
    assert read_purchases(engine).schema == pl.Schema(PURCHASES_SCHEMA)
    assert read_cancellations(engine).height == 0


UNORDERED = [
    "489500,22001,LATE LINE,1,2010-03-05 10:00:00,1.0,13085,United Kingdom",
    "489400,22002,EARLY LINE,2,2009-12-01 07:00:00,1.0,13085,United Kingdom",
    "489450,22003,TIE FIRST IN FILE,3,2010-01-10 09:00:00,1.0,12680,France",
    "489451,22004,TIE SECOND IN FILE,4,2010-01-10 09:00:00,1.0,13085,United Kingdom",
    "C489452,22001,LATE LINE,-1,2010-03-06 10:00:00,1.0,13085,United Kingdom",
    "C489453,22002,EARLY LINE,-1,2009-12-02 07:00:00,1.0,13085,United Kingdom",
]


@pytest.mark.parametrize("batch_rows", [1, 2, 100_000])
def test_reads_come_in_time_order_with_ties_in_file_order_whatever_the_batch_size(
    tmp_path: Path, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> None:
    ingest_files([write_csv(tmp_path / "a.csv", UNORDERED)], engine, progress=False)
    monkeypatch.setattr(queries, "FETCH_BATCH_ROWS", batch_rows)
    purchases = read_purchases(engine)
    assert purchases.schema == pl.Schema(PURCHASES_SCHEMA)
    assert purchases["quantity"].to_list() == [2, 3, 4, 1]
    assert purchases["country"].to_list()[1:3] == ["France", "United Kingdom"]
    cancellations = read_cancellations(engine)
    assert cancellations["invoice"].to_list() == ["C489453", "C489452"]
    assert cancellations["invoice_date"].to_list() == [
        dt.datetime(2009, 12, 2, 7),
        dt.datetime(2010, 3, 6, 10),
    ]


@pytest.mark.parametrize(
    ("quantity", "text", "text_order"),
    [
        (3, "2010-1-10 09:00:00", [2, 4, 1, 3]),  # not zero-padded: out of time order
        (4, "2010-01-10 09:00:00", [2, 4, 3, 1]),  # the same instant, a tie out of id order
    ],
)
def test_dates_stored_as_other_text_are_still_read_in_time_then_stored_order(
    tmp_path: Path, engine: sa.Engine, quantity: int, text: str, text_order: list[int]
) -> None:
    ingest_files([write_csv(tmp_path / "a.csv", UNORDERED)], engine, progress=False)
    with engine.begin() as conn:  # text another tool could have written
        conn.execute(
            sa.text("UPDATE transactions SET invoice_date = :text WHERE quantity = :quantity"),
            {"text": text, "quantity": quantity},
        )
        in_text_order = conn.execute(
            sa.text("SELECT quantity FROM transactions ORDER BY invoice_date, id")
        ).scalars()
        assert list(in_text_order) == text_order  # what the database's order gives
    purchases = read_purchases(engine)
    assert purchases.schema == pl.Schema(PURCHASES_SCHEMA)
    assert purchases["quantity"].to_list() == [2, 3, 4, 1]  # the tie in stored order
    assert purchases["invoice_date"].to_list()[1:3] == [dt.datetime(2010, 1, 10, 9)] * 2


def test_existing_hashes_large_path_matches_small_path(
    tmp_path: Path, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_files([write_csv(tmp_path / "a.csv", LINES)], engine, progress=False)
    with engine.connect() as conn:
        stored = pl.Series(
            conn.execute(sa.text("SELECT row_hash FROM transactions")).scalars().all()
        )
        candidates = pl.concat([stored.head(2), pl.Series(["0" * 32, "f" * 32])])
        small = load.existing_hashes(conn, candidates)
        monkeypatch.setattr(load, "_SMALL_LOOKUP", 0)
        large = load.existing_hashes(conn, candidates)
    assert sorted(small.to_list()) == sorted(large.to_list()) == sorted(stored.head(2).to_list())


def test_migration_2_upgrades_a_version_1_store(tmp_path: Path) -> None:
    """A store written by schema version 1 (text hash index, no row_key) is upgraded in place."""
    from retail_clv.store.migrations import migrate, row_key_expr

    url = f"sqlite:///{tmp_path / 'v1.db'}"
    eng = get_engine(url)
    ingest_files([write_csv(tmp_path / "a.csv", LINES)], eng, progress=False)
    with eng.begin() as conn:  # turn it back into a version-1 store
        for name in ("transactions", "cancellations", "rejected_data"):
            conn.execute(sa.text(f"DROP INDEX ux_{name}_row_key"))
            conn.execute(sa.text(f"ALTER TABLE {name} DROP COLUMN row_key"))
            conn.execute(sa.text(f"CREATE UNIQUE INDEX ux_{name}_row_hash ON {name} (row_hash)"))
        conn.execute(sa.text("DELETE FROM schema_migrations WHERE version >= 2"))
    assert migrate(eng) == schema.SCHEMA_VERSION
    with eng.connect() as conn:
        stored = pl.DataFrame(
            conn.execute(sa.text("SELECT row_hash, row_key FROM transactions")).all(),
            schema=["row_hash", "row_key"],
            orient="row",
        )
        indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("rejected_data")}
    assert stored.height == 3
    assert (
        stored["row_key"].to_list()
        == stored.select(row_key_expr(pl.col("row_hash")))["row_key"].to_list()
    )
    assert "ux_rejected_data_row_key" in indexes and "ux_rejected_data_row_hash" not in indexes
    [again] = ingest_files([write_csv(tmp_path / "a.csv", LINES)], eng, progress=False)
    assert again.rows_duplicate == again.rows_read
    eng.dispose()


def test_a_bad_second_file_found_before_ingesting_stores_nothing_at_all(
    tmp_path: Path, engine: sa.Engine
) -> None:
    from retail_clv.errors import InputFileError

    good = write_csv(tmp_path / "good.csv", LINES)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"")
    with pytest.raises(InputFileError, match=r"nothing was stored(.|\n)*bad.csv.*file is empty"):
        ingest_files([good, bad], engine, progress=False)
    assert counts(engine)["transactions"] == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(schema.ingest_runs.c.id)).scalars().all() == []


def test_a_second_file_bad_beyond_its_first_lines_keeps_the_first_and_stores_nothing_of_its_own(
    tmp_path: Path, engine: sa.Engine
) -> None:
    from retail_clv.errors import InputFileError

    good = write_csv(tmp_path / "good.csv", LINES)
    # the check before the ingest reads the first 256 KiB; the broken line lies after them
    late = [LINES[-1]] * 5_000 + ['"an unclosed quote,x']
    bad = write_csv(tmp_path / "bad.csv", late)
    with pytest.raises(InputFileError, match="bad.csv is not a readable CSV file"):
        ingest_files([good, bad], engine, progress=False)
    assert counts(engine)["transactions"] == 3
    with engine.connect() as conn:
        runs = conn.execute(sa.select(schema.ingest_runs.c.source_file)).scalars().all()
    assert runs == ["good.csv"]


def test_bulk_settings_are_restored_after_the_run(tmp_path: Path, engine: sa.Engine) -> None:
    with engine.connect() as conn:
        before = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    with load.bulk_session(engine) as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 0  # OFF during the run
        conn.rollback()
    ingest_files([write_csv(tmp_path / "a.csv", LINES)], engine, progress=False)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == before != 0


def test_lines_of_the_first_purchase_time_give_the_country_of_the_first_in_the_file(
    tmp_path: Path, engine: sa.Engine
) -> None:
    at = "2010-03-01 10:00:00"
    lines = [
        f"{n},85048,BALL,1,{when},5.0,777,{country}"
        for n, when, country in [
            (1, "2010-03-02 10:00:00", "Italy"),
            (2, at, "Spain"),
            (3, at, "Austria"),
        ]
    ]
    ingest_files([write_csv(tmp_path / "ties.csv", lines)], engine, progress=False)
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(schema.customers.c.country, schema.customers.c.first_seen)
        ).one()
        stored = conn.execute(
            sa.select(schema.transactions.c.country).order_by(schema.transactions.c.id)
        ).scalars()
        assert list(stored) == ["Italy", "Spain", "Austria"]  # each line's country, file order
    assert tuple(row) == ("Spain", dt.datetime(2010, 3, 1, 10))


def _line(invoice: int, day: str) -> str:
    return f"{invoice},85048,BALL,2,{day} 10:00:00,3.5,13085,United Kingdom"


def test_a_file_end_the_store_has_company_for_is_no_mistyped_date(
    tmp_path: Path, store_url: str
) -> None:
    # a file whose first line repeats a stored one (or overlaps the store's history) was said to
    # have "a mistyped date?", judged on the file alone
    from retail_clv.ingest.pipeline import clean_file

    engine = get_engine(store_url)
    days = ["2010-01-05", "2010-02-10", "2010-03-20", "2010-04-25", "2010-06-01", "2010-06-10"]
    history = write_csv(tmp_path / "h.csv", [_line(500 + i, d) for i, d in enumerate(days)])
    july = [_line(600 + i, f"2010-07-{d:02d}") for i, d in enumerate((1, 8, 15, 20))]
    overlap = write_csv(tmp_path / "o.csv", [_line(500, "2010-01-05"), *july])
    typo = write_csv(tmp_path / "t.csv", [*july, _line(700, "2015-07-05")])
    alone = [w for w in clean_file(overlap).report.warnings if "mistyped date" in w]
    assert alone and alone[0].startswith("the first purchase day, 2010-01-05 (1 line), is 177 ")
    [first] = ingest_files([history], engine, progress=False)
    [stored] = ingest_files([overlap], engine, progress=False)
    [kept] = ingest_files([typo], engine, progress=False)
    engine.dispose()
    assert first.rows_loaded == 6 and stored.rows_duplicate == 1
    assert not any("mistyped date" in w for w in stored.warnings)
    # a day the store has nothing near is still pointed out
    [note] = [w for w in kept.warnings if "mistyped date" in w]
    assert note.startswith("the last purchase day, 2015-07-05 (1 line), is 1811 days away")
    # two days only, one of them near the store: no telling which is wrong, the note stays
    two = write_csv(tmp_path / "2.csv", [_line(800, "2010-07-25"), _line(801, "2011-07-30")])
    engine = get_engine(store_url)
    [only] = ingest_files([two], engine, progress=False)
    engine.dispose()
    assert any(w.startswith("the only two purchase days, 2010-07-25 and") for w in only.warnings)


def test_a_long_list_of_sheets_is_stored_cut_with_an_ellipsis(tmp_path: Path) -> None:
    # the run's sheet list was cut at 200 characters mid-name, without a sign of it
    from tests.ingest.test_pipeline import _orders, _workbook

    names = [f"Sales orders 2010-{m:02d} (web)" for m in range(1, 11)]
    engine = get_engine(f"sqlite:///{tmp_path / 's.db'}")
    ingest_files(
        [_workbook(tmp_path / "year.xlsx", {n: _orders(1) for n in names})], engine, progress=False
    )
    with engine.connect() as conn:
        stored = conn.execute(sa.select(schema.ingest_runs.c.sheet)).scalar_one()
    engine.dispose()
    assert len(stored) == 200 and stored.endswith("…")
    assert stored.startswith(", ".join(names[:6]))


def test_a_new_store_says_it_was_created_and_an_upgrade_names_each_migration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from retail_clv.store.migrations import migrate

    caplog.set_level(logging.INFO, logger="retail_clv.store.migrations")
    eng = get_engine(f"sqlite:///{tmp_path / 'new.db'}")
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert said == [f"created a new store (schema version {schema.SCHEMA_VERSION})"]
    caplog.clear()
    with eng.begin() as conn:  # as if the last migration were still to apply
        conn.execute(
            sa.text(f"DELETE FROM schema_migrations WHERE version = {MIGRATIONS[-1].version}")
        )
    assert migrate(eng) == schema.SCHEMA_VERSION
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert said == [f"applied schema migration {MIGRATIONS[-1].version}: {MIGRATIONS[-1].name}"]
    eng.dispose()


def test_a_one_day_file_far_from_every_stored_purchase_is_pointed_out(
    tmp_path: Path, engine: sa.Engine
) -> None:
    # the file-level check needs two days in the file: a one-line typo got no word at ingest
    lone = "489999,85048,15CM CHRISTMAS GLASS BALL 20 LIGHTS,3,{day} 10:00:00,6.95,13085,UK"
    [first] = ingest_files(
        [write_csv(tmp_path / "first.csv", [lone.format(day="2010-12-09")])], engine, progress=False
    )
    assert not any("a mistyped date?" in w for w in first.warnings)  # an empty store: no judge
    [near] = ingest_files(
        [write_csv(tmp_path / "near.csv", [lone.format(day="2011-01-20")])], engine, progress=False
    )
    assert not any("a mistyped date?" in w for w in near.warnings)  # 42 days from a stored one
    [typo] = ingest_files(
        [write_csv(tmp_path / "typo.csv", [lone.format(day="2012-01-20")])], engine, progress=False
    )
    [note] = [w for w in typo.warnings if "a mistyped date?" in w]
    assert note.startswith(
        "every purchase line of the file falls on 2012-01-20 (1 line), and the store holds no "
        "purchase within 60 days of it: a mistyped date?"
    )
    assert counts(engine)["transactions"] == 3  # pointed out, stored all the same
