"""``melting_discount``: a personal code whose percent steps down after issue
(30% today, 20% tomorrow, 10% the day after, then gone). Steps must each last
and percents never rise. Each boundary is announced a day ahead as a
``discount_step`` event (kaskad.loyalty.jobs)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from kaskad import clock, hookimpl
from kaskad.loyalty import codes, ledger
from kaskad.loyalty.program import DurationText
from kaskad.mechanics import AwardContext, Mechanic

class MeltingStep(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    percent: Annotated[float, Meta(gt=0, le=100, title="Percent")]
    for_: Annotated[DurationText, Meta(title="For", description="How long this step lasts")] = msgspec.field(name="for")


class MeltingDiscountConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    steps: Annotated[list[MeltingStep], Meta(min_length=1, title="Steps", description="Percents never rise")]
    pattern: Annotated[str, Meta(title="Pattern")] = "MELT-######"


def step_dicts(config: MeltingDiscountConfig) -> list[dict]:
    return [{"percent": s.percent, "for": s.for_} for s in config.steps]


class MeltingDiscount(Mechanic):
    name = "melting_discount"
    title = "Melting discount"
    config_type = MeltingDiscountConfig

    def award(self, session, ctx: AwardContext, config: MeltingDiscountConfig) -> dict:
        def work(op):
            now = clock.now()
            steps = codes.melting_steps(step_dicts(config), now)
            [code] = codes.new_codes(session, config.pattern, 1)
            row = codes.issue(session, code=code, kind="melting", contact_id=ctx.contact_id, max_uses=1,
                              combinable=False, valid_until=codes.datetime.fromisoformat(steps[-1]["until"]),
                              details={"steps": steps})
            return {"code": code, "percent": codes.plain(steps[0]["percent"]), "steps": steps,
                    "valid_until": steps[-1]["until"], "next_step_at": codes.next_step_at(row, now).isoformat()}

        return ledger.once(session, ctx.idempotency_key, "award:melting_discount", ctx.contact_id, work)


    def refresh(self, session, result: dict) -> dict:
        """The step in force now: ``percent`` is 0 and ``melted`` true once it is gone or used."""
        row = codes.find(session, result["code"])
        if row is None:
            return result
        now = clock.now()
        pct, _ = codes.melting_percent(row, now)
        used = row.max_uses is not None and row.uses >= row.max_uses
        nxt = codes.next_step_at(row, now)
        return {**result, "percent": 0 if pct is None or used else codes.plain(pct),
                "next_step_at": nxt.isoformat() if nxt and not used else None, "melted": pct is None or used}


@hookimpl
def register_mechanics(register):
    register(MeltingDiscount())
