"""``gift_card``: a card with a money balance, spent in parts at checkout."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec
from msgspec import Meta

from kaskad import clock, hookimpl
from kaskad.loyalty import codes, ledger, program
from kaskad.loyalty.program import DurationText
from kaskad.mechanics import AwardContext, Mechanic


class GiftCardConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    amount: Annotated[float, Meta(gt=0, title="Amount")]
    valid_for: Annotated[DurationText | None, Meta(title="Valid for")] = "P365D"
    pattern: Annotated[str, Meta(title="Pattern")] = "GC-****-****"


class GiftCard(Mechanic):
    name = "gift_card"
    title = "Gift card"
    config_type = GiftCardConfig

    def award(self, session, ctx: AwardContext, config: GiftCardConfig) -> dict:
        def work(op):
            until = program.after(config.valid_for, clock.now())
            [code] = codes.new_codes(session, config.pattern, 1)
            codes.issue(session, code=code, kind="gift_card", balance=Decimal(str(config.amount)), valid_until=until)
            return {"code": code, "balance": str(codes.plain(config.amount)),
                    "valid_until": until.isoformat() if until else None}

        return ledger.once(session, ctx.idempotency_key, "award:gift_card", ctx.contact_id, work)


@hookimpl
def register_mechanics(register):
    register(GiftCard())
