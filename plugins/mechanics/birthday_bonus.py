"""``birthday_bonus``: points once per contact per calendar year."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from kaskad import clock, hookimpl
from kaskad.loyalty import ledger, program
from kaskad.loyalty.program import DurationText
from kaskad.mechanics import AwardContext, Mechanic


class BirthdayBonusConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    points: Annotated[int, Meta(gt=0, title="Points")]
    expires_in: Annotated[DurationText | None, Meta(title="Expires in")] = "P30D"


class BirthdayBonus(Mechanic):
    name = "birthday_bonus"
    title = "Birthday bonus (once a year)"
    config_type = BirthdayBonusConfig

    def award(self, session, ctx: AwardContext, config: BirthdayBonusConfig) -> dict:
        now = clock.now()
        r = ledger.earn(session, ctx.contact_id, config.points, f"birthday_bonus:{ctx.contact_id}:{now.year}",
                        "birthday bonus", expires_at=program.after(config.expires_in, now))
        return {"points": int(r["points"].split(".")[0]), "expires_at": r["expires_at"]}


@hookimpl
def register_mechanics(register):
    register(BirthdayBonus())
