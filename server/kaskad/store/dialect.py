"""Dialect-specific statements that read the same on SQLite and PostgreSQL."""

from __future__ import annotations

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
