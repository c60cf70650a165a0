"""Dialect-specific statements that read the same on SQLite and PostgreSQL."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_for(session_or_conn, table):
    """``INSERT`` with ``on_conflict_do_nothing/update`` for the session's database."""
    bind = session_or_conn.get_bind() if isinstance(session_or_conn, Session) else session_or_conn
    name = bind.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database {name!r}; Kaskad runs on SQLite and PostgreSQL")


@contextmanager
def driver_cursor(session: Session):
    """A cursor of the session's own DB-API connection, inside its transaction.

    For the few hot paths where the driver's features (psycopg's binary
    parameters) matter more than SQLAlchemy's portability.
    """
    cur = session.connection().connection.driver_connection.cursor()
    try:
        yield cur
    finally:
        cur.close()
