"""The program's rules: accrual, tiers, stacking. One document, edited through the API."""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import msgspec
from msgspec import Meta
from sqlalchemy import Connection, select

from kaskad import clock
from kaskad.flow.durations import PATTERN, parse_duration

DurationText = Annotated[str, Meta(pattern=PATTERN, description="ISO-8601 duration, e.g. P14D")]


class Tier(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    min_spend: Annotated[Decimal, Meta(description="Net spend within the window needed for this tier")]
    multiplier: Annotated[Decimal, Meta(description="Multiplies accrued points (1.5 = +50%)")] = Decimal(1)


class Accrual(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    points_per_unit: Annotated[Decimal, Meta(description="Points per currency unit paid")] = Decimal("0.05")
    category_multipliers: dict[str, Decimal] = {}
    excluded_skus: list[str] = []
    min_order: Decimal = Decimal(0)
    pending: Annotated[DurationText, Meta(description="Earned points wait this long before they can be spent")] = "P14D"
    expires_in: DurationText | None = "P365D"


class Stacking(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    max_discount_percent: Annotated[Decimal, Meta(description="0–100: code discounts plus points never exceed this share of the subtotal")] = Decimal(50)
    max_points_percent: Annotated[Decimal, Meta(description="0–100: points pay at most this share of what is left")] = Decimal(50)
    point_value: Annotated[Decimal, Meta(description="Currency value of one point (positive)")] = Decimal(1)


class ProgramRules(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    accrual: Accrual = msgspec.field(default_factory=Accrual)
    tiers: list[Tier] = []
    tier_window: DurationText = "P365D"
    stacking: Stacking = msgspec.field(default_factory=Stacking)

    def validate(self) -> list[str]:
        errors = []
        mins = [t.min_spend for t in self.tiers]
        if mins != sorted(mins) or len(set(mins)) != len(mins):
            errors.append("tiers: min_spend must strictly increase from one tier to the next")
        st = self.stacking
        for name in ("max_discount_percent", "max_points_percent"):
            if not (0 <= getattr(st, name) <= 100):
                errors.append(f"stacking.{name}: must be between 0 and 100")
        if st.point_value <= 0:
            errors.append("stacking.point_value: must be positive")
        if self.accrual.points_per_unit < 0:
            errors.append("accrual.points_per_unit: must not be negative")
        for field in (self.accrual.pending, self.tier_window, self.accrual.expires_in):
            if field is not None:
                parse_duration(field)
        return errors

    def tier_for(self, spend: Decimal) -> Tier | None:
        current = None
        for tier in self.tiers:
            if spend >= tier.min_spend:
                current = tier
        return current


#: Rules are read on every quote; a process keeps them this long (a change shows within it).
CACHE_SECONDS = 5.0
_cache: dict[object, tuple[float, ProgramRules]] = {}


def load(session) -> ProgramRules:
    from kaskad.loyalty.models import Program

    # ``session`` is a Session or a Core connection; the engine is the key (hashing its URL
    # cost more than the rest of this function)
    bind = session.engine if isinstance(session, Connection) else session.get_bind().engine
    hit = _cache.get(bind)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    row = session.scalar(select(Program.document).where(Program.id == 1))
    rules = msgspec.convert(row or {}, ProgramRules, strict=False)
    _cache[bind] = (time.monotonic() + CACHE_SECONDS, rules)
    return rules


def save(session, rules: ProgramRules) -> None:
    from kaskad.loyalty.models import Program

    doc = msgspec.to_builtins(rules)
    _cache.clear()
    row = session.get(Program, 1)
    if row is None:
        session.add(Program(id=1, document=doc, updated_at=clock.now()))
    else:
        row.document = doc
        row.updated_at = clock.now()


def after(duration: str | None, moment: datetime) -> datetime | None:
    return parse_duration(duration).add_to(moment) if duration else None
