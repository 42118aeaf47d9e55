import datetime as dt

import pytest
import sqlalchemy as sa

from retail_clv.store import schema
from retail_clv.store.db import get_engine
from retail_clv.store.migrations import MIGRATIONS, migrate


def _store_with_customers(engine: sa.Engine, customers: list[tuple[str, str, dt.datetime]]) -> None:
    """Write customers (id, country, first seen) with one purchase line each, as stored."""
    day = min(f for _, _, f in customers)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.ingest_runs).values(
                id=1,
                source_file="a.csv",
                sha256="0" * 64,
                file_format="csv",
                started_at=day,
                status="succeeded",
            )
        )
        conn.execute(sa.insert(schema.stores).values(id=1, name="Web", country="Germany"))
        conn.execute(sa.insert(schema.products).values(stock_code="P", category="Other"))
        conn.execute(
            sa.insert(schema.customers),
            [{"customer_id": c, "country": k, "first_seen": f} for c, k, f in customers],
        )
        conn.execute(
            sa.insert(schema.transactions),
            [
                {
                    "invoice": f"I{i}",
                    "stock_code": "P",
                    "customer_id": c,
                    "store_id": 1,
                    "quantity": 1,
                    "price": 2.0,
                    "invoice_date": f,
                    "row_hash": f"h{i}",
                    "row_key": i,
                    "ingest_run_id": 1,
                }
                for i, (c, _, f) in enumerate(customers)
            ],
        )


def _apply(engine: sa.Engine, version: int) -> tuple[list[tuple[str, str]], list[str]]:
    """Apply one migration; return the customers (id, country) and each line's customer id."""
    [migration] = [m for m in MIGRATIONS if m.version == version]
    with engine.begin() as conn:
        migration.apply(conn)
        kept = conn.execute(
            sa.select(schema.customers.c.customer_id, schema.customers.c.country).order_by(
                schema.customers.c.customer_id
            )
        ).all()
        bought = (
            conn.execute(
                sa.select(schema.transactions.c.customer_id).order_by(schema.transactions.c.id)
            )
            .scalars()
            .all()
        )
    engine.dispose()
    return [(r.customer_id, r.country) for r in kept], list(bought)


def test_e_mail_customer_ids_are_lower_cased_into_one_customer(store_url: str) -> None:
    engine = get_engine(store_url)
    day = dt.datetime(2011, 1, 1, 10)
    customers = [
        ("Kunde@Shop.DE", "Germany", day),
        ("kunde@shop.de", "Austria", day + dt.timedelta(days=5)),  # the same, seen later
        ("Solo@Shop.DE", "France", day),
        ("@SUM(A1)", "France", day),  # not an e-mail address
    ]
    _store_with_customers(engine, customers)
    kept, bought = _apply(engine, 3)
    assert kept == [
        ("@SUM(A1)", "France"),
        ("kunde@shop.de", "Germany"),  # the earliest first purchase's country
        ("solo@shop.de", "France"),
    ]
    assert bought == ["kunde@shop.de", "kunde@shop.de", "solo@shop.de", "@SUM(A1)"]


def test_migration_5_reads_ids_with_zero_decimals_as_whole_numbers(store_url: str) -> None:
    # a file saved with a two-decimal number format stored 12346.00 beside 12346: two customers
    engine = get_engine(store_url)
    day = dt.datetime(2011, 1, 1, 10)
    customers = [
        ("12346", "Germany", day + dt.timedelta(days=3)),
        ("12346.00", "Austria", day),  # the same customer, seen first
        ("17850.00", "France", day),
        ("12.50", "France", day),  # not a whole number: kept
        ("12.000", "Spain", day),  # perhaps 12,000 with a thousands dot: kept
    ]
    _store_with_customers(engine, customers)
    with engine.begin() as conn:  # a version-4 store, upgraded as get_engine does it
        conn.execute(sa.text("DELETE FROM schema_migrations WHERE version >= 5"))
    assert migrate(engine) == schema.SCHEMA_VERSION == 5
    kept, bought = _apply(engine, 5)  # applying it again changes nothing
    assert kept == [
        ("12.000", "Spain"),
        ("12.50", "France"),
        ("12346", "Austria"),
        ("17850", "France"),
    ]
    assert bought == ["12346", "12346", "17850", "12.50", "12.000"]


def test_migration_4_gives_stored_lines_a_country(tmp_path, store_url: str) -> None:
    """Lines of a version-3 store get a country (their own was not stored).

    The customer's country on the lines of the first purchase time, the store's on the others.
    """
    from retail_clv.ingest.pipeline import ingest_files

    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country,Store"
    rows = [
        "1,85048,BALL,1,2010-01-02 10:00:00,5.0,F1,France,Paris",
        "2,85048,BALL,1,2010-01-01 10:00:00,5.0,U1,United Kingdom,Paris",
        "3,85048,BALL,1,2010-01-03 10:00:00,5.0,F1,France,Paris",
        "4,85048,BALL,1,2010-01-04 10:00:00,5.0,U1,Spain,Paris",
    ]
    path = tmp_path / "stores.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    engine = get_engine(store_url)
    ingest_files([path], engine, progress=False)
    with engine.begin() as conn:  # turn it back into a version-3 store
        conn.execute(sa.text("ALTER TABLE transactions DROP COLUMN country"))
        conn.execute(sa.text("DELETE FROM schema_migrations WHERE version >= 4"))
    assert migrate(engine) == schema.SCHEMA_VERSION
    t = schema.transactions
    with engine.connect() as conn:
        stored = conn.execute(sa.select(t.c.invoice, t.c.country).order_by(t.c.invoice)).all()
    engine.dispose()
    assert [tuple(r) for r in stored] == [
        ("1", "France"),  # F1's first purchase: the customer's country
        ("2", "United Kingdom"),  # U1's first purchase
        ("3", "France"),  # the store's country (Paris: France, its most frequent)
        ("4", "France"),  # the store's: the line's own (Spain) was not stored before
    ]


def test_a_migration_stopped_half_way_is_applied_again_in_full(tmp_path, monkeypatch) -> None:
    """SQLite: the ALTER TABLE of migration 4 is rolled back with the fill that failed after it."""
    from retail_clv.ingest.pipeline import ingest_files
    from retail_clv.store import migrations

    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
    path = tmp_path / "a.csv"
    path.write_text(f"{header}\n1,85048,BALL,1,2010-01-02 10:00:00,5.0,F1,France\n")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = get_engine(url)
    ingest_files([path], engine, progress=False)
    with engine.begin() as conn:  # turn it back into a version-3 store
        conn.execute(sa.text("ALTER TABLE transactions DROP COLUMN country"))
        conn.execute(sa.text("DELETE FROM schema_migrations WHERE version >= 4"))
    engine.dispose()

    fill = migrations._purchase_line_country

    def stopped(conn: sa.Connection) -> None:
        conn.execute(sa.text("ALTER TABLE transactions ADD COLUMN country VARCHAR(200)"))
        raise KeyboardInterrupt  # the user's Ctrl-C before the lines were filled

    monkeypatch.setattr(
        migrations, "MIGRATIONS", (*MIGRATIONS[:3], migrations.Migration(4, "stopped", stopped))
    )
    with pytest.raises(KeyboardInterrupt):
        migrations.migrate(sa.create_engine(url))
    monkeypatch.setattr(
        migrations, "MIGRATIONS", (*MIGRATIONS[:3], migrations.Migration(4, "fill", fill))
    )
    engine = get_engine(url)  # migrates again
    with engine.connect() as conn:
        versions = conn.execute(sa.select(schema.schema_migrations.c.version)).scalars().all()
        countries = conn.execute(sa.select(schema.transactions.c.country)).scalars().all()
    engine.dispose()
    assert sorted(versions)[-1] == 4 and countries == ["France"]
