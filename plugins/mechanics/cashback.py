"""``cashback``: a boosted cashback offer: ``percent`` of what the customer pays comes
back as points on orders confirmed while the offer is valid (on top of the base accrual)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec
from msgspec import Meta

from kaskad import clock, hookimpl
from kaskad.loyalty import codes, ledger, program
from kaskad.loyalty.program import DurationText
from kaskad.mechanics import AwardContext, Mechanic


class CashbackConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    percent: Annotated[float, Meta(gt=0, le=100, title="Percent back as points")]
    valid_for: Annotated[DurationText, Meta(title="Valid for")]
    min_order: Annotated[float, Meta(ge=0, title="Minimum order")] | None = None


class Cashback(Mechanic):
    name = "cashback"
    title = "Cashback offer"
    config_type = CashbackConfig

    def award(self, session, ctx: AwardContext, config: CashbackConfig) -> dict:
        def work(op):
            now = clock.now()
            until = program.after(config.valid_for, now)
            codes.issue(session, code=f"CB-{op.id}-{codes.from_pattern('****')}", kind="cashback",
                        contact_id=ctx.contact_id, percent=Decimal(str(config.percent)), valid_until=until,
                        min_order=None if config.min_order is None else Decimal(str(config.min_order)))
            return {"percent": codes.plain(config.percent), "valid_until": until.isoformat(), "min_order": config.min_order}

        return ledger.once(session, ctx.idempotency_key, "award:cashback", ctx.contact_id, work)


@hookimpl
def register_mechanics(register):
    register(Cashback())
