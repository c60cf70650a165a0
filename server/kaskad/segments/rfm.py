"""RFM scores 1–5 per contact, in one set-based SQL query.

Only contacts with at least one counted order (not cancelled/refunded) are scored;
the figures come from the per-contact summary ``contact_order_stats``.
Recency is the time of the last order, frequency the number of orders, monetary
the spend net of ``refunded_amount``. Each is scored by quintile of rank:
``score = 1 + 5 * (rank - 1) // n`` where ``rank`` is SQL ``RANK()`` ascending
(older / fewer / less = lower); ties share the lowest rank, so equal values always
get the same score (a big tie can leave a score unused). Explicit thresholds
replace quintiles per dimension: ``[t2, t3, t4, t5]`` lower bounds for frequency and
monetary; for recency ``[d5, d4, d3, d2]``, the most days since the last order that
still earn that score (with ``now``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from kaskad.segments.models import ContactOrderStats

SEGMENT_RULES = [
    # (name, min R, max R, min F, max F, min M) — first match wins
    ("Champions", 4, 5, 4, 5, 4),
    ("Loyal", 3, 5, 4, 5, 1),
    ("Can't lose them", 1, 1, 4, 5, 1),
    ("At risk", 1, 2, 3, 5, 1),
    ("Potential loyalists", 4, 5, 2, 3, 1),
    ("New", 5, 5, 1, 1, 1),
    ("Promising", 4, 4, 1, 1, 1),
    ("Need attention", 3, 3, 2, 3, 1),
    ("About to sleep", 3, 3, 1, 1, 1),
    ("Hibernating", 2, 2, 1, 2, 1),
    ("Lost", 1, 1, 1, 3, 1),
]


def segment_name(r: int, f: int, m: int) -> str:
    for name, r0, r1, f0, f1, m0 in SEGMENT_RULES:
        if r0 <= r <= r1 and f0 <= f <= f1 and m >= m0:
            return name
    raise AssertionError((r, f, m))  # the table covers every (r, f)


def _quintile(col, n, *, desc=False):
    order = col.desc() if desc else col
    return 1 + (5 * (func.rank().over(order_by=order) - 1)) / n


def _thresholds(col, bounds):
    return case(*[(col >= b, 5 - i) for i, b in enumerate(reversed(bounds))], else_=literal(1))


def scores_query(*, thresholds: dict[str, list[float]] | None = None, now: datetime | None = None):
    """``SELECT contact_id, r, f, m, last_at, orders, spend`` for every contact with orders."""
    thresholds = thresholds or {}
    st = ContactOrderStats
    base = select(
        st.contact_id.label("contact_id"),
        st.last_at.label("last_at"),
        st.orders.label("orders"),
        # rounded to the column's 4 places: SQLite sums decimals as floats, and equal
        # spends must tie exactly to share a score
        func.round(st.spend, 4).label("spend"),
    ).subquery()
    # n once, not COUNT(*) OVER () beside each RANK(): that window keeps a frame of all
    # rows per row, which spilled to disk and took most of the time at a million contacts
    n = select(func.count()).select_from(ContactOrderStats).scalar_subquery()
    if "recency" in thresholds:
        if now is None:
            raise ValueError("recency thresholds need now")
        # recency bounds are days since the last order, best first: [d5, d4, d3, d2]
        cut = [now - timedelta(days=b) for b in thresholds["recency"]]
        r = case(*[(base.c.last_at >= c, 5 - i) for i, c in enumerate(cut)], else_=literal(1))
    else:
        r = _quintile(base.c.last_at, n)
    f = _thresholds(base.c.orders, thresholds["frequency"]) if "frequency" in thresholds else _quintile(base.c.orders, n)
    m = _thresholds(base.c.spend, thresholds["monetary"]) if "monetary" in thresholds else _quintile(base.c.spend, n)
    return select(base.c.contact_id, r.label("r"), f.label("f"), m.label("m"), base.c.last_at, base.c.orders, base.c.spend)


def compute(session: Session, **kw) -> dict[int, tuple[int, int, int, str]]:
    """contact id → (R, F, M, named segment)."""
    out = {}
    for row in session.execute(scores_query(**kw)):
        r, f, m = int(row.r), int(row.f), int(row.m)
        out[row.contact_id] = (r, f, m, segment_name(r, f, m))
    return out
