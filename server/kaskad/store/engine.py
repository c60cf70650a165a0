"""Engine and session factory for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import msgspec
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
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
    # msgspec decodes JSONB several times faster than the stdlib (the engine reads
    # every run's context and contact's attributes per batch); same Python values.
    kw.setdefault("json_deserializer", msgspec.json.decode)
    if "pool_pre_ping" in kw:
        return create_engine(url, **kw)
    engine = create_engine(url, **kw)
    _ping_idle_connections(engine)
    return engine


#: A pooled connection unused for this many seconds is pinged before it is handed out.
PING_AFTER_IDLE = 10.0


def _ping_idle_connections(engine: Engine) -> None:
    """Like ``pool_pre_ping``, but only for connections that sat idle: a restarted database
    dropped those, while a busy pool (a till's API under load) skips a round trip per request.
    A connection that breaks in use fails its request and invalidates the whole pool."""

    @event.listens_for(engine, "checkin")
    def _idle_since(dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection, record, proxy):
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool replaces the connection and tries again
            raise DisconnectionError(f"idle connection failed its ping: {exc}") from exc


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error."""
    with sessions() as session, session.begin():
        yield session


@contextmanager
def reads(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reads that need no common snapshot: on PostgreSQL each statement
    runs on its own (autocommit: no BEGIN and COMMIT round trips); elsewhere a transaction."""
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        with transaction(sessions) as session:
            yield session
        return
    with engine.connect() as conn:
        with sessions(bind=conn.execution_options(isolation_level="AUTOCOMMIT")) as session:
            yield session


@contextmanager
def core_transaction(engine: Engine) -> Iterator[Connection]:
    """A Core connection in one transaction, without an ORM Session: for hot paths that run
    only Core statements (a Session, its transaction and its connection lookup per statement
    cost a till's redeem about a fifth of its Python time)."""
    with engine.begin() as conn:
        yield conn


@contextmanager
def core_reads(engine: Engine) -> Iterator[Connection]:
    """Like :func:`reads`, a Core connection instead of a Session."""
    if engine.dialect.name != "postgresql":
        with core_transaction(engine) as conn:
            yield conn
        return
    with engine.connect() as conn:
        # psycopg's own switch, not the AUTOCOMMIT execution option: SQLAlchemy's setting and
        # resetting of the isolation level around it cost ~6% of a redeem's Python time.
        driver = conn.connection.driver_connection
        driver.autocommit = True
        try:
            yield conn
        finally:
            driver.autocommit = False
