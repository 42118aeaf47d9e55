import datetime as dt

import sqlalchemy as sa

from retail_clv.store import schema
from retail_clv.store.db import get_engine
from retail_clv.store.migrations import MIGRATIONS


def test_e_mail_customer_ids_are_lower_cased_into_one_customer(store_url: str) -> None:
    engine = get_engine(store_url)
    day = dt.datetime(2011, 1, 1, 10)
    customers = [
        ("Kunde@Shop.DE", "Germany", day),
        ("kunde@shop.de", "Austria", day + dt.timedelta(days=5)),  # the same, seen later
        ("Solo@Shop.DE", "France", day),
        ("@SUM(A1)", "France", day),  # not an e-mail address
    ]
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
    [migration] = [m for m in MIGRATIONS if m.name == "e-mail customer ids lower-cased"]
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
    assert [tuple(r) for r in kept] == [
        ("@SUM(A1)", "France"),
        ("kunde@shop.de", "Germany"),  # the earliest first purchase's country
        ("solo@shop.de", "France"),
    ]
    assert bought == ["kunde@shop.de", "kunde@shop.de", "solo@shop.de", "@SUM(A1)"]
