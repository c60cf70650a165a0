"""Waking the scheduler when new work is committed, instead of at its next tick.

The database stays the source of truth: a writer of undispatched events calls
:func:`notify_new_events` inside its transaction, and PostgreSQL delivers the
notification only when that transaction commits (identical ones in a
transaction are folded into one). The leading scheduler ``LISTEN``s on its
leadership connection and, when idle, waits for a notification *or* its tick,
whichever comes first. A lost notification (the scheduler was busy, or
reconnecting) costs at most one tick: the next tick reads the same rows.
On SQLite there is nothing to listen on; the tick alone applies.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

CHANNEL = "kaskad_events"


def notify_new_events(session: Session) -> None:
    """Tell the scheduler, once this transaction commits, that undispatched events wait."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))


def listen(connection) -> None:
    """Subscribe a PostgreSQL connection (SQLAlchemy) to the channel; commits."""
    connection.execute(text(f"LISTEN {CHANNEL}"))
    connection.commit()


def wait(driver_connection, timeout: float) -> bool:
    """Block until a notification arrives or ``timeout`` seconds pass; True when one came.

    ``driver_connection`` is the psycopg connection under a listening one, outside a
    transaction. Drains whatever else is already queued, so a burst of commits wakes the scheduler once.
    """
    woke = False
    for _ in driver_connection.notifies(timeout=timeout, stop_after=1):
        woke = True
    if woke:
        for _ in driver_connection.notifies(timeout=0):
            pass
    return woke
