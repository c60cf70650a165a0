"""``referral``: the contact's own referral code (one per contact). A friend who uses
it gets rewarded, the referrer, or both, when the friend's first order is confirmed."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta
from sqlalchemy import select

from kaskad import hookimpl
from kaskad.loyalty import codes, ledger
from kaskad.loyalty.models import LoyaltyCode
from kaskad.mechanics import AwardContext, Mechanic


class ReferralConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reward: Annotated[Literal["referrer", "friend", "both"], Meta(title="Who is rewarded")] = "both"
    referrer_points: Annotated[int, Meta(ge=0, title="Referrer's points")] = 0
    friend_points: Annotated[int, Meta(ge=0, title="Friend's points")] = 0
    pattern: Annotated[str, Meta(title="Pattern")] = "REF-@@@@##"


class Referral(Mechanic):
    name = "referral"
    title = "Referral code"
    config_type = ReferralConfig

    def award(self, session, ctx: AwardContext, config: ReferralConfig) -> dict:
        def work(op):
            ledger.lock_account(session, ctx.contact_id)
            row = session.scalar(select(LoyaltyCode).where(LoyaltyCode.contact_id == ctx.contact_id,
                                                           LoyaltyCode.kind == "referral"))
            if row is None:
                [code] = codes.new_codes(session, config.pattern, 1)
                row = codes.issue(session, code=code, kind="referral", contact_id=ctx.contact_id, valid_until=None,
                                  details=msgspec.to_builtins(config))
            return {"code": row.code, **{k: v for k, v in row.details.items() if k != "pattern"}}

        return ledger.once(session, ctx.idempotency_key, "award:referral", ctx.contact_id, work)


@hookimpl
def register_mechanics(register):
    register(Referral())
