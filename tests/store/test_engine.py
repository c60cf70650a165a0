"""The engine's pool on PostgreSQL: idle connections are pinged, busy ones are not;
``reads`` runs statements without a transaction."""

import pytest
from sqlalchemy import event, text

from kaskad.store import engine as engine_mod
from kaskad.store.engine import make_engine, make_sessionmaker, reads, transaction

pytestmark = pytest.mark.postgres


def _backend_pid(sessions) -> int:
    with transaction(sessions) as s:
        return s.scalar(text("SELECT pg_backend_pid()"))


def test_an_idle_connection_killed_by_the_database_is_replaced(pg_url, monkeypatch):
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    sessions = make_sessionmaker(engine)
    try:
        pid = _backend_pid(sessions)
        with make_engine(pg_url, pool_pre_ping=False).connect() as admin:  # as a database restart would
            assert admin.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        monkeypatch.setattr(engine_mod, "PING_AFTER_IDLE", 0.0)
        assert _backend_pid(sessions) != pid  # pinged, found dead, replaced: the request works
    finally:
        engine.dispose()


def test_a_busy_connection_is_not_pinged(pg_url):
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    sessions = make_sessionmaker(engine)
    statements = []
    try:
        _backend_pid(sessions)

        @event.listens_for(engine, "before_cursor_execute")
        def count(conn, cursor, statement, *args):
            statements.append(statement)

        _backend_pid(sessions)
        assert statements == ["SELECT pg_backend_pid()"]
    finally:
        engine.dispose()


def test_reads_run_outside_a_transaction(pg_url):
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    try:
        with reads(sessions) as s:
            first = s.scalar(text("SELECT transaction_timestamp()"))
            second = s.scalar(text("SELECT transaction_timestamp()"))
            assert first != second  # no BEGIN: a transaction (and snapshot) per statement
        with transaction(sessions) as s:
            first = s.scalar(text("SELECT transaction_timestamp()"))
            assert s.scalar(text("SELECT transaction_timestamp()")) == first
    finally:
        engine.dispose()
