"""The loyalty mechanic contract. A mechanic plugin subclasses :class:`Mechanic`.

An award changes the loyalty ledger or issues a code through :mod:`kaskad.loyalty`
(``ledger.earn``, ``ledger.once``, ``codes.issue``); what a code then does at the
till — quote, redeem, confirm, refund — is the checkout's, by the code's kind
(docs/loyalty.md).
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec


class AwardContext(msgspec.Struct, kw_only=True):
    """What an award node knows when it awards."""

    contact_id: int
    idempotency_key: str
    flow_key: str | None = None
    node_id: str | None = None


class Mechanic:
    """Base class of every mechanic."""

    #: Name used in flows (``"mechanic": "points"``).
    name: ClassVar[str]
    title: ClassVar[str] = ""
    #: Struct an award node's ``config`` must satisfy (published as JSON Schema).
    config_type: ClassVar[type[msgspec.Struct] | None] = None

    def award(self, session: Any, ctx: AwardContext, config: Any) -> dict[str, Any]:
        """Apply the award inside the caller's transaction (``session``), idempotent on
        ``ctx.idempotency_key``; return data templates can show (e.g. a promo code)."""
        raise NotImplementedError

    def refresh(self, session: Any, result: dict[str, Any]) -> dict[str, Any]:
        """Bring an earlier award's ``result`` up to date for a later send (a melting
        discount's current percent). The engine calls this before rendering
        ``awards.<node_id>``; the default returns ``result`` unchanged."""
        return result
