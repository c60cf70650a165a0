"""Core tables. Feature areas (engine, loyalty, segments…) keep their own tables
in their own modules on the same ``Base``; Alembic migrations under
``kaskad/migrations`` create them all."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kaskad.store.types import BigIntPK, JSONDoc, Money, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONDoc, Decimal: Money}


def _now():
    return func.now()


class Contact(Base):
    """A customer. ``external_id`` is the integrator's id; ``id`` is ours."""

    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    timezone: Mapped[str | None] = mapped_column(String(64))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(server_default=_now())
    erased_at: Mapped[datetime | None]


class Consent(Base):
    """Consent of one contact for one channel and topic (topic ``*`` = all topics)."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("contact_id", "channel", "topic"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(64), default="*")
    status: Mapped[str] = mapped_column(String(16))  # granted | revoked
    source: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(server_default=_now())


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_contact_placed", "contact_id", "placed_at"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(24))  # placed | paid | cancelled | refunded | partially_refunded
    amount: Mapped[Decimal] = mapped_column(Money)
    refunded_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3))
    placed_at: Mapped[datetime]
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column(server_default=_now())


class OrderItem(Base):
    __tablename__ = "order_items"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(120), index=True)
    name: Mapped[str | None] = mapped_column(String(300))
    category: Mapped[str | None] = mapped_column(String(120), index=True)
    quantity: Mapped[Decimal] = mapped_column(Money)
    price: Mapped[Decimal] = mapped_column(Money)
    amount: Mapped[Decimal] = mapped_column(Money)


class Event(Base):
    """Something a contact did. ``idempotency_key`` makes re-sent events no-ops.

    ``dispatched_at`` is NULL until the engine has evaluated the event against
    triggers, goals and event waits: events are read back from the database,
    never handed over in memory, so none is lost when a process dies.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_contact_name_time", "contact_id", "name", "occurred_at"),
        Index(
            "ix_events_undispatched",
            "id",
            postgresql_where=text("dispatched_at IS NULL"),
            sqlite_where=text("dispatched_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    occurred_at: Mapped[datetime]
    properties: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    received_at: Mapped[datetime] = mapped_column(server_default=_now())
    dispatched_at: Mapped[datetime | None]


class Flow(Base):
    __tablename__ = "flows"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    current_version: Mapped[int | None]  # the published version new runs enter
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(server_default=_now())


class FlowVersion(Base):
    """One saved version of a flow. A published version is frozen forever."""

    __tablename__ = "flow_versions"
    __table_args__ = (UniqueConstraint("flow_id", "version"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    flow_id: Mapped[int] = mapped_column(ForeignKey("flows.id", ondelete="CASCADE"))
    version: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))  # draft | published | retired
    document: Mapped[str] = mapped_column(Text)  # canonical flow JSON
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    published_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(120))


#: The statuses of a run that is not finished: the predicate of ``ix_runs_due``.
LIVE_RUN = "status IN ('active', 'waiting', 'claimed')"


class JourneyRun(Base):
    """One contact's walk through one flow version; its position lives here."""

    __tablename__ = "journey_runs"
    __table_args__ = (
        # Only live runs are in it (finished ones are most of the table and are never due): a
        # run's last update writes no entry here. Queries that use it spell the statuses as
        # literals (LIVE_RUN), so that a prepared statement's generic plan can still prove them.
        Index("ix_runs_due", "status", "wake_at", postgresql_where=text(LIVE_RUN), sqlite_where=text(LIVE_RUN)),
        Index("ix_runs_flow_contact", "flow_id", "contact_id"),
        Index("ix_runs_contact", "contact_id"),
        Index("ix_runs_flow_node", "flow_version_id", "node_id", "status"),
        Index(
            "uq_runs_flow_dedupe",
            "flow_id",
            "dedupe_key",
            unique=True,
            postgresql_where=text("dedupe_key IS NOT NULL"),
            sqlite_where=text("dedupe_key IS NOT NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    flow_id: Mapped[int] = mapped_column(ForeignKey("flows.id", ondelete="CASCADE"))
    flow_version_id: Mapped[int] = mapped_column(ForeignKey("flow_versions.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    node_id: Mapped[str] = mapped_column(String(120))
    # active (due now) | waiting (wake_at) | claimed | completed | converted | exited | failed | holdout
    status: Mapped[str] = mapped_column(String(16))
    wake_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    #: Token of the current claim: a batch message carries it, so a stale or
    #: duplicated message finds no run to advance (kaskad.engine.advance).
    claim: Mapped[int | None] = mapped_column(BigInteger)
    entered_at: Mapped[datetime] = mapped_column(server_default=_now())
    finished_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(300))
    context: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)


class RunStep(Base):
    """History: a run passed a node, leaving by ``port``."""

    __tablename__ = "run_steps"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    # No foreign key: steps are written by the engine in the transaction that moves their run,
    # and runs are never deleted (erasure anonymises). A checked key cost a lookup and a row lock
    # on journey_runs for each of a run's five-odd steps.
    run_id: Mapped[int] = mapped_column(BigIntPK, index=True)
    flow_version_id: Mapped[int]
    node_id: Mapped[str] = mapped_column(String(120))
    port: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # passed | waiting | failed | exited
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(server_default=_now())


class OutboxMessage(Base):
    """A message to send. The unique ``key`` (run, node, scope) makes a send happen once."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    # No foreign key, as for run_steps: the engine writes the row with its run.
    run_id: Mapped[int | None] = mapped_column(BigIntPK, index=True)
    flow_id: Mapped[int | None] = mapped_column(index=True)
    node_id: Mapped[str | None] = mapped_column(String(120))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(64))
    # pending | sending | sent | failed | skipped | unknown (interrupted mid-call, not resent)
    status: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    provider_message_id: Mapped[str | None] = mapped_column(String(200), index=True)
    cost: Mapped[Decimal | None] = mapped_column(Money)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    sent_at: Mapped[datetime | None]


class MessageEvent(Base):
    """What happened to a sent message: delivered, opened, clicked, bounced, failed,
    unsubscribed, replied. Written by provider webhooks and signed tracking links;
    read by branch engagement conditions, cascades and analytics. The first of
    each status per message is kept (re-sent webhooks are no-ops)."""

    __tablename__ = "message_events"
    __table_args__ = (UniqueConstraint("outbox_id", "status"), Index("ix_message_events_contact", "contact_id", "at"))
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    detail: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)


class ApiToken(Base):
    """An API bearer token. Only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))  # admin | marketer | integrator
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class PeriodicRun(Base):
    """When each periodic job (:mod:`kaskad.periodic`) last ran, so that a restart (a deploy)
    does not run every hourly and daily job again at once."""

    __tablename__ = "periodic_runs"
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    started_at: Mapped[datetime]
    seconds: Mapped[float]
    error: Mapped[str | None] = mapped_column(Text)
