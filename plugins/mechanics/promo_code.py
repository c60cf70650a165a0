"""``promo_code``: a personal single-use percent code, e.g. ``GIFT-4827``.
Bulk codes for everyone are made through ``POST /api/v1/loyalty/promo-codes``."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec
from msgspec import Meta

from kaskad import clock, hookimpl
from kaskad.loyalty import codes, ledger, program
from kaskad.loyalty.program import DurationText
from kaskad.mechanics import AwardContext, Mechanic


class PromoCodeConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    percent: Annotated[float, Meta(gt=0, le=100, title="Discount percent")]
    valid_for: Annotated[DurationText, Meta(title="Valid for")]
    pattern: Annotated[str, Meta(title="Pattern", description="# a digit, @ a letter, * either")] = "PROMO-######"
    combinable: Annotated[bool, Meta(title="Combinable with other codes")] = True


class PromoCode(Mechanic):
    name = "promo_code"
    title = "Personal promo code"
    config_type = PromoCodeConfig

    def award(self, session, ctx: AwardContext, config: PromoCodeConfig) -> dict:
        def work(op):
            until = program.after(config.valid_for, clock.now())
            [code] = codes.new_codes(session, config.pattern, 1)
            codes.issue(session, code=code, kind="promo", contact_id=ctx.contact_id,
                        percent=Decimal(str(config.percent)), valid_until=until, max_uses=1,
                        combinable=config.combinable)
            return {"code": code, "percent": codes.plain(config.percent), "valid_until": until.isoformat()}

        return ledger.once(session, ctx.idempotency_key, "award:promo_code", ctx.contact_id, work)


@hookimpl
def register_mechanics(register):
    register(PromoCode())
