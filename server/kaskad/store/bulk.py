"""Set-based inserts and updates of many rows in one short statement.

On PostgreSQL the rows travel as one array per column and the server unnests
them: a statement with a dozen placeholders instead of a multi-row VALUES list
with thousands, which the driver would re-parse for every batch (several times
slower, see kaskad.ingest.events). Other databases get SQLAlchemy's executemany.
"""

from __future__ import annotations

from typing import Any, Sequence

import msgspec
from sqlalchemy import JSON, BigInteger, Boolean, Integer, Numeric, String, Table, Text, bindparam, insert, update
from sqlalchemy.orm import Session

from kaskad.store.dialect import driver_cursor, insert_for

_enc = msgspec.json.encode


def _pg_type(column) -> tuple[str, bool]:
    """(PostgreSQL array element type, is JSON) of a column."""
    t = column.type
    impl = getattr(t, "impl", t)
    if isinstance(t, JSON) or isinstance(impl, JSON) or "JSON" in type(t).__name__.upper():
        return "text", True
    variant = getattr(t, "_variant_mapping", {}).get("postgresql")
    if variant is not None and "JSON" in type(variant).__name__.upper():
        return "text", True
    if isinstance(impl, BigInteger):
        return "bigint", False
    if isinstance(impl, Integer):
        return "bigint", False
    if isinstance(impl, Boolean):
        return "boolean", False
    if isinstance(impl, Numeric):
        return "numeric", False
    if isinstance(impl, (String, Text)):
        return "text", False
    if "DATETIME" in type(t).__name__.upper() or "DATETIME" in type(impl).__name__.upper():
        return "timestamptz", False
    raise TypeError(f"bulk: no PostgreSQL array type for column {column.name} ({t!r})")


def _arrays(table: Table, cols: Sequence[str], rows: Sequence[dict]) -> tuple[list[str], list[list[Any]]]:
    types, params = [], []
    for c in cols:
        pg, is_json = _pg_type(table.c[c])
        types.append(pg + ("::jsonb" if is_json else ""))
        if is_json:
            params.append([None if r.get(c) is None else _enc(r[c]).decode() for r in rows])
        else:
            params.append([r.get(c) for r in rows])
    return types, params


def bulk_insert(session: Session, table: Table, rows: Sequence[dict], *, on_conflict_nothing: bool = False,
                returning: Sequence[str] = ()) -> list[tuple]:
    """Insert ``rows`` (dicts with the same keys); returns the ``returning`` columns of inserted rows."""
    if not rows:
        return []
    cols = list(rows[0].keys())
    if session.get_bind().dialect.name == "postgresql":
        types, params = _arrays(table, cols, rows)
        names = ", ".join(f"u{i}" for i in range(len(cols)))
        select_list = ", ".join(
            f"u{i}::jsonb" if t.endswith("::jsonb") else f"u{i}" for i, t in enumerate(types))
        arrays = ", ".join(f"%b::{t.removesuffix('::jsonb')}[]" for t in types)
        sql = (f"INSERT INTO {table.name} ({', '.join(cols)}) SELECT {select_list} FROM unnest({arrays}) AS t({names})"
               + (" ON CONFLICT DO NOTHING" if on_conflict_nothing else "")
               + (f" RETURNING {', '.join(returning)}" if returning else ""))
        with driver_cursor(session) as cur:
            cur.execute(sql, params, binary=True)
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
        types, params = _arrays(table, [key, *cols], rows)
        arrays = ", ".join(f"%b::{t.removesuffix('::jsonb')}[]" for t in types)
        sets = ", ".join(
            f"{c} = u.u{i + 1}" + ("::jsonb" if types[i + 1].endswith("::jsonb") else "") for i, c in enumerate(cols))
        names = ", ".join(f"u{i}" for i in range(len(cols) + 1))
        sql = f"UPDATE {table.name} AS r SET {sets} FROM unnest({arrays}) AS u({names}) WHERE r.{key} = u.u0"
        with driver_cursor(session) as cur:
            cur.execute(sql, params, binary=True)
        return
    stmt = update(table).where(table.c[key] == bindparam("_k")).values({c: bindparam(f"v_{c}") for c in cols})
    session.execute(stmt, [{**{f"v_{c}": r[c] for c in cols}, "_k": r[key]} for r in rows])


def among(session: Session, column, values: Sequence[Any]):
    """``column IN values`` — on PostgreSQL as ``= ANY(:array)``: one parameter, one cached
    statement, instead of a placeholder per value for the driver to parse."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import any_
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))
