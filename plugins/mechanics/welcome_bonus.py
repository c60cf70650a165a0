"""``welcome_bonus``: points once per contact, ever (however many journeys award it)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from kaskad import clock, hookimpl
from kaskad.loyalty import ledger, program
from kaskad.loyalty.program import DurationText
from kaskad.mechanics import AwardContext, Mechanic


class WelcomeBonusConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    points: Annotated[int, Meta(gt=0, title="Points")]
    expires_in: Annotated[DurationText | None, Meta(title="Expires in")] = "P30D"


class WelcomeBonus(Mechanic):
    name = "welcome_bonus"
    title = "Welcome bonus (once per customer)"
    config_type = WelcomeBonusConfig

    def award(self, session, ctx: AwardContext, config: WelcomeBonusConfig) -> dict:
        # The key is the contact, not the run: a second journey cannot welcome twice.
        r = ledger.earn(session, ctx.contact_id, config.points, f"welcome_bonus:{ctx.contact_id}", "welcome bonus",
                        expires_at=program.after(config.expires_in, clock.now()))
        return {"points": int(r["points"].split(".")[0]), "expires_at": r["expires_at"]}


@hookimpl
def register_mechanics(register):
    register(WelcomeBonus())
