"""Engine and session factory for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import msgspec
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **kw) -> Engine:
    """Create an engine with the settings each backend needs.

    SQLite runs in WAL mode with a busy timeout so the API and the in-process
    worker can write concurrently; PostgreSQL uses psycopg 3 with a pool.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kw)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            # Let SQLAlchemy, not pysqlite, decide when transactions begin, so
            # BEGIN IMMEDIATE below takes the write lock up front.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - trivial
            # IMMEDIATE: writers queue on the lock instead of failing with
            # "database is locked" when a read transaction upgrades.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if "poolclass" not in kw:
        kw.setdefault("pool_size", 10)
        kw.setdefault("max_overflow", 20)
    kw.setdefault("pool_pre_ping", True)
    # msgspec decodes JSONB several times faster than the stdlib (the engine reads
    # every run's context and contact's attributes per batch); same Python values.
    kw.setdefault("json_deserializer", msgspec.json.decode)
    return create_engine(url, **kw)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error."""
    with sessions() as session, session.begin():
        yield session
