"""Rebuild the base-health tables: the base and its buying per day/week/month, cohorts,
the daily RFM and churn snapshot, and channel fatigue. Set-based SQL on both databases.

Definitions (docs/analytics.md has them for marketers):

- a **paid order** is one in status ``paid`` or ``partially_refunded``; its value is
  ``amount − refunded_amount``;
- a **new customer** of a period made their first paid order ever in it; a **returning**
  one bought in the period and had bought before;
- the **base** at a period's end counts contacts created by then and not erased;
- a **churned** customer's last paid order is more than ``churn_days`` (default 180) old;
- **fatigue**: contacts who got N messages of a channel in a week (N = 1…4, 5 = five or
  more) and how many of them unsubscribed from one of those messages.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.orm import Session

from kaskad.analytics.attribution import PAID, SENT
from kaskad.analytics.models import BasePeriod, Cohort, Fatigue, Snapshot
from kaskad.segments import rfm
from kaskad.store.models import Contact, MessageEvent, Order, OutboxMessage

GRAINS = ("day", "week", "month")
FATIGUE_CAP = 5


def period_expr(session: Session, column, grain: str):
    """SQL for the first day of the (UTC) day, week (Monday) or month of ``column``, as text
    ``YYYY-MM-DD`` on both databases."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.date_trunc(grain, func.timezone("UTC", column)), "YYYY-MM-DD")
    if grain == "day":
        return func.date(column)
    if grain == "month":
        return func.strftime("%Y-%m-01", column)
    # SQLite: on to the week's Sunday (the same day if it is one), then back to its Monday
    return func.date(column, "weekday 0", "-6 days")


def period_start(day: date, grain: str) -> date:
    """The same bucketing in Python."""
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day


def _date(text) -> date:
    return text if isinstance(text, date) else date.fromisoformat(str(text)[:10])


def _net():
    return Order.amount - func.coalesce(Order.refunded_amount, 0)


def refresh_periods(session: Session) -> None:
    """Rebuild :class:`BasePeriod` for every grain."""
    session.execute(delete(BasePeriod))
    paid = Order.status.in_(PAID)
    firsts = (select(Order.contact_id, func.min(Order.placed_at).label("first_at"))
              .where(paid).group_by(Order.contact_id).subquery())
    for grain in GRAINS:
        rows: dict[date, dict] = defaultdict(lambda: {"contacts": 0, "new_contacts": 0, "orders": 0,
                                                       "revenue": Decimal(0), "buyers": 0, "new_customers": 0})
        p = period_expr(session, Order.placed_at, grain)
        for period, orders, revenue, buyers in session.execute(
            select(p, func.count(), func.sum(_net()), func.count(Order.contact_id.distinct())).where(paid).group_by(p)
        ):
            rows[_date(period)].update(orders=orders, revenue=Decimal(revenue or 0), buyers=buyers)
        p = period_expr(session, firsts.c.first_at, grain)
        for period, n in session.execute(select(p, func.count()).group_by(p)):
            rows[_date(period)]["new_customers"] = n
        p = period_expr(session, Contact.created_at, grain)
        for period, n in session.execute(select(p, func.count()).where(Contact.erased_at.is_(None)).group_by(p)):
            rows[_date(period)]["new_contacts"] = n
        running = 0
        for period in sorted(rows):
            running += rows[period]["new_contacts"]
            rows[period]["contacts"] = running
        if rows:
            session.execute(insert(BasePeriod), [{"grain": grain, "period": k, **v} for k, v in sorted(rows.items())])


def refresh_cohorts(session: Session) -> None:
    """Rebuild :class:`Cohort`: customers by the month of their first paid order, revenue by months since."""
    session.execute(delete(Cohort))
    paid = Order.status.in_(PAID)
    firsts = (select(Order.contact_id, func.min(Order.placed_at).label("first_at"))
              .where(paid).group_by(Order.contact_id).subquery())
    cohort = period_expr(session, firsts.c.first_at, "month")
    sizes = {_date(c): n for c, n in session.execute(select(cohort, func.count()).group_by(cohort))}
    month = period_expr(session, Order.placed_at, "month")
    q = (select(cohort.label("cohort"), month.label("month"), func.count(Order.contact_id.distinct()), func.sum(_net()))
         .join(firsts, firsts.c.contact_id == Order.contact_id).where(paid).group_by(cohort, month))
    rows = []
    for c, m, buyers, revenue in session.execute(q):
        c, m = _date(c), _date(m)
        rows.append({"cohort": c, "age": (m.year - c.year) * 12 + m.month - c.month, "customers": sizes[c],
                     "buyers": buyers, "revenue": Decimal(revenue or 0)})
    if rows:
        session.execute(insert(Cohort), rows)


def refresh_snapshot(session: Session, now: datetime, churn_days: int = 180) -> None:
    """Today's RFM segment sizes and churned share, kept under today's date (re-running replaces it)."""
    today = now.date()
    session.execute(delete(Snapshot).where(Snapshot.day == today))
    scores = rfm.scores_query().subquery()
    counts: dict[str, int] = defaultdict(int)
    for r, f, m, n in session.execute(
        select(scores.c.r, scores.c.f, scores.c.m, func.count()).group_by(scores.c.r, scores.c.f, scores.c.m)
    ):
        counts[rfm.segment_name(int(r), int(f), int(m))] += n
    last = (select(func.max(Order.placed_at).label("last_at")).where(Order.status.in_(PAID))
            .group_by(Order.contact_id).subquery())
    customers, churned = session.execute(
        select(func.count(), func.coalesce(func.sum(case((last.c.last_at < now - timedelta(days=churn_days), 1), else_=0)), 0))
    ).one()
    contacts = session.scalar(select(func.count()).select_from(Contact).where(Contact.erased_at.is_(None)))
    rows = [{"day": today, "kind": "rfm", "key": k, "value": v} for k, v in counts.items()]
    rows += [{"day": today, "kind": "base", "key": k, "value": int(v)}
             for k, v in (("contacts", contacts), ("customers", customers), ("churned", churned))]
    session.execute(insert(Snapshot), rows)


def refresh_fatigue(session: Session) -> None:
    """Rebuild :class:`Fatigue` from sent messages and their ``unsubscribed`` events."""
    session.execute(delete(Fatigue))
    week = period_expr(session, OutboxMessage.sent_at, "week")
    unsub = (select(MessageEvent.outbox_id).where(MessageEvent.status == "unsubscribed")
             .group_by(MessageEvent.outbox_id).subquery())
    per_contact = (
        select(week.label("week"), OutboxMessage.channel.label("channel"), OutboxMessage.contact_id,
               func.count().label("n"), func.max(case((unsub.c.outbox_id.is_not(None), 1), else_=0)).label("unsub"))
        .outerjoin(unsub, unsub.c.outbox_id == OutboxMessage.id)
        .where(OutboxMessage.status.in_(SENT), OutboxMessage.sent_at.is_not(None))
        .group_by(week, OutboxMessage.channel, OutboxMessage.contact_id)
        .subquery()
    )
    bucket = case((per_contact.c.n >= FATIGUE_CAP, FATIGUE_CAP), else_=per_contact.c.n)
    q = (select(per_contact.c.week, per_contact.c.channel, bucket, func.count(), func.sum(per_contact.c.unsub))
         .group_by(per_contact.c.week, per_contact.c.channel, bucket))
    rows = [{"week": _date(w), "channel": ch, "received": int(b), "contacts": n, "unsubscribed": int(u or 0)}
            for w, ch, b, n, u in session.execute(q)]
    if rows:
        session.execute(insert(Fatigue), rows)
