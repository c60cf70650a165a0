"""Set-based inserts and updates of many rows in one short statement.

On PostgreSQL the rows travel as one JSON array, encoded by msgspec in C, and the
server turns it into rows typed by the table itself (``jsonb_populate_recordset``):
a statement with one parameter, whatever the batch size. A multi-row VALUES list
with thousands of placeholders is re-parsed by the driver for every batch, and
per-column arrays cost the driver more to dump than the statement costs the
server (measured on the engine's batches: a third of the worker's CPU went to
dumping arrays). Other databases get SQLAlchemy's executemany.
"""

from __future__ import annotations

from typing import Any, Sequence

import msgspec
from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.orm import Session

from kaskad.store.dialect import driver_cursor, insert_for


_enc = msgspec.json.encode  # datetimes as RFC 3339, Decimals as strings: PostgreSQL reads both exactly


def _rows_json(rows: Sequence[dict]) -> str:
    # Keys are column names; a column that a row leaves out is NULL, as with executemany.
    return _enc(rows if isinstance(rows, list) else list(rows)).decode()


def bulk_insert(session: Session, table: Table, rows: Sequence[dict], *, on_conflict_nothing: bool = False,
                returning: Sequence[str] = ()) -> list[tuple]:
    """Insert ``rows`` (dicts with the same keys); returns the ``returning`` columns of inserted rows."""
    if not rows:
        return []
    cols = list(rows[0].keys())
    if session.get_bind().dialect.name == "postgresql":
        names = ", ".join(cols)
        sql = (f"INSERT INTO {table.name} ({names}) SELECT {names} FROM jsonb_populate_recordset(NULL::{table.name}, %s)"
               + (" ON CONFLICT DO NOTHING" if on_conflict_nothing else "")
               + (f" RETURNING {', '.join(returning)}" if returning else ""))
        with driver_cursor(session) as cur:
            cur.execute(sql, [_rows_json(rows)])
            return [tuple(r) for r in cur.fetchall()] if returning else []
    stmt = insert_for(session, table) if on_conflict_nothing else insert(table)
    if on_conflict_nothing:
        stmt = stmt.on_conflict_do_nothing()
    if returning:
        return [tuple(r) for r in session.execute(stmt.returning(*[table.c[c] for c in returning]), list(rows)).all()]
    session.execute(stmt, list(rows))
    return []


def bulk_update(session: Session, table: Table, rows: Sequence[dict], key: str = "id") -> None:
    """Update each row found by ``key`` with the other values of its dict (all dicts have the same keys)."""
    if not rows:
        return
    cols = [c for c in rows[0].keys() if c != key]
    if session.get_bind().dialect.name == "postgresql":
        sets = ", ".join(f"{c} = u.{c}" for c in cols)
        sql = (f"UPDATE {table.name} AS r SET {sets} FROM jsonb_populate_recordset(NULL::{table.name}, %s) AS u "
               f"WHERE r.{key} = u.{key}")
        with driver_cursor(session) as cur:
            cur.execute(sql, [_rows_json(rows)])
        return
    stmt = update(table).where(table.c[key] == bindparam("_k")).values({c: bindparam(f"v_{c}") for c in cols})
    session.execute(stmt, [{**{f"v_{c}": r[c] for c in cols}, "_k": r[key]} for r in rows])


def fetch_rows(session: Session, stmt) -> list[tuple]:
    """The rows of a Core ``SELECT`` as plain tuples.

    On PostgreSQL the rows are taken from psycopg's cursor as it loaded them (``jsonb`` as
    Python objects, ``timestamptz`` aware), skipping SQLAlchemy's per-row result processing,
    which cost the engine more than the statements for a batch's runs and contacts (the
    statement itself still goes through SQLAlchemy's compiled cache). Elsewhere the rows
    need SQLAlchemy's types (SQLite keeps JSON and datetimes as text).
    """
    result = session.execute(stmt)
    if session.get_bind().dialect.name == "postgresql":
        try:
            return result.cursor.fetchall()
        finally:
            result.close()
    return [tuple(r) for r in result]


def among(session: Session, column, values: Sequence[Any]):
    """``column IN values`` — on PostgreSQL as ``= ANY(:array)``: one parameter, one cached
    statement, instead of a placeholder per value for the driver to parse."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import any_
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))
