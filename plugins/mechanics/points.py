"""``points``: award a number of points (a lot with its own expiry)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from kaskad import clock, hookimpl
from kaskad.loyalty import ledger, program
from kaskad.loyalty.program import DurationText
from kaskad.mechanics import AwardContext, Mechanic


class PointsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    points: Annotated[int, Meta(gt=0, title="Points", description="How many points to award")]
    expires_in: Annotated[DurationText | None, Meta(title="Expires in")] = None
    reason: Annotated[str, Meta(title="Reason", description="Shown in the customer's history")] = "bonus"


class PointsMechanic(Mechanic):
    name = "points"
    title = "Bonus points"
    config_type = PointsConfig

    def award(self, session, ctx: AwardContext, config: PointsConfig) -> dict:
        now = clock.now()
        result = ledger.earn(session, ctx.contact_id, config.points, ctx.idempotency_key, config.reason,
                             expires_at=program.after(config.expires_in, now))
        return {"points": config.points, "expires_at": result["expires_at"], "reason": config.reason}


@hookimpl
def register_mechanics(register):
    register(PointsMechanic())
