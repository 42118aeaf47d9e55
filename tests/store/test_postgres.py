"""The same ingestion code against a real PostgreSQL server (started by the tests)."""

from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from retail_clv.errors import StoreError
from retail_clv.ingest.pipeline import ingest_files
from retail_clv.store import load, queries, schema
from retail_clv.store.db import get_engine
from retail_clv.store.queries import (
    PURCHASES_SCHEMA,
    read_cancellations,
    read_purchases,
    read_rejections,
)

from ..ingest.conftest import VALID, write_csv, write_parquet
from .test_store import LINES, counts

pytestmark = pytest.mark.postgres


def test_postgresql_ingest_roundtrip_idempotency_and_rollback(
    tmp_path: Path, postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = get_engine(postgresql_url)
    try:
        assert engine.dialect.name == "postgresql"
        weird = (
            '489438,22111,"SCOTTIE DOG ""HOT"" WATER BOTTLE, RED",3,2009-12-04 10:00:00,4.95,'
            "13085,United Kingdom"
        )
        path = write_csv(tmp_path / "pg.csv", [*LINES, weird, "489439,22112,,1,bad date,1,,"])
        [report] = ingest_files([path], engine, progress=False)
        assert (report.rows_loaded, report.rows_rejected, report.rows_duplicate) == (4, 3, 1)
        assert counts(engine)["transactions"] == 4

        purchases = read_purchases(engine)
        assert purchases.schema == pl.Schema(PURCHASES_SCHEMA)
        assert purchases["invoice_date"].is_sorted()
        assert read_cancellations(engine)["quantity"].to_list() == [-2]
        import psycopg

        names: list[object] = []
        cursor = psycopg.Connection.cursor

        def recording(self, *args, **kwargs):
            names.append(kwargs.get("name"))
            return cursor(self, *args, **kwargs)

        monkeypatch.setattr(psycopg.Connection, "cursor", recording)
        monkeypatch.setattr(queries, "FETCH_BATCH_ROWS", 1)  # one server-side fetch per row
        assert read_purchases(engine).equals(purchases)
        assert names == ["retail_clv_read"]  # a server-side cursor: batches stream
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        assert read_purchases(autocommit).equals(purchases)  # a plain cursor there
        assert names[1:] == [None]
        monkeypatch.undo()
        with engine.connect() as conn:
            description = conn.execute(
                sa.select(schema.products.c.description).where(
                    schema.products.c.stock_code == "22111"
                )
            ).scalar_one()
            empty_vs_null = conn.execute(
                sa.select(
                    schema.rejected_data.c.raw_description, schema.rejected_data.c.raw_country
                ).where(schema.rejected_data.c.raw_stock_code == "22112")
            ).one()
        assert description == 'SCOTTIE DOG "HOT" WATER BOTTLE, RED'  # COPY kept quotes and comma
        assert tuple(empty_vs_null) == (None, None)  # missing stays NULL, not ''
        total, page = read_rejections(engine, reason="BAD_DATE")
        assert total == 1 and page["raw_invoice_date"].to_list() == ["bad date"]

        before = counts(engine)
        monkeypatch.setattr(load, "_SMALL_LOOKUP", 0)  # exercise the string_agg lookup too
        [again] = ingest_files([path], engine, progress=False)
        assert again.rows_duplicate == again.rows_read == 8
        assert counts(engine) == before

        def crash(conn, table, frame, constants=None):
            raise sa.exc.OperationalError("COPY", {}, Exception("connection lost (simulated)"))

        monkeypatch.setattr(load, "_bulk_insert_indexed", crash)
        other = write_csv(tmp_path / "other.csv", [VALID.replace("489434", "999999")])
        with pytest.raises(StoreError, match="nothing of it was stored"):
            ingest_files([other], engine, progress=False)
        assert counts(engine) == before
    finally:
        engine.dispose()


def test_postgresql_migrations_from_several_processes_at_once(postgresql_url: str) -> None:
    """API workers or CLIs starting together on an empty database: one creates the tables."""
    from concurrent.futures import ThreadPoolExecutor

    from retail_clv.store.migrations import MIGRATIONS

    engines = [sa.create_engine(postgresql_url) for _ in range(4)]
    try:
        from retail_clv.store.migrations import migrate

        with ThreadPoolExecutor(max_workers=4) as pool:
            versions = list(pool.map(migrate, engines))
        assert versions == [MIGRATIONS[-1].version] * 4
        with engines[0].connect() as conn:
            applied = conn.execute(sa.select(sa.func.count()).select_from(schema.schema_migrations))
            assert applied.scalar_one() == len(MIGRATIONS)
    finally:
        for engine in engines:
            engine.dispose()


def test_postgresql_stores_text_that_held_nul_characters(
    tmp_path: Path, postgresql_url: str
) -> None:
    engine = get_engine(postgresql_url)
    try:
        lines = [line.replace("GLASS BALL", "GLASS\x00BALL") for line in LINES[:3]]
        path = write_parquet(tmp_path / "nul.parquet", lines)
        [report] = ingest_files([path], engine, progress=False)
        assert (report.rows_loaded, report.rows_rejected, report.rows_duplicate) == (1, 1, 1)
        assert any("NUL" in w for w in report.warnings)
        with engine.connect() as conn:
            description = conn.execute(sa.select(schema.products.c.description)).scalar_one()
        assert description == "15CM CHRISTMAS GLASSBALL 20 LIGHTS"
    finally:
        engine.dispose()


def test_a_read_only_command_writes_no_tables_into_another_database(postgresql_url: str) -> None:
    # clv train / backtest / predict with --db naming an existing database without a store
    # created retail-clv's nine tables there before saying it held no purchases
    with pytest.raises(StoreError, match=r"there is no retail-clv store in .*ingest data first"):
        get_engine(postgresql_url, must_exist=True)
    probe = sa.create_engine(postgresql_url)
    with probe.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
    probe.dispose()
    get_engine(postgresql_url).dispose()  # created by default (ingest)
    get_engine(postgresql_url, must_exist=True).dispose()  # and then accepted
