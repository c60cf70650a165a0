"""Loyalty visibility and administration.

- ``GET /api/v1/loyalty/{external_id}``: balance, lots with expiry, tier and progress, recent history.
- ``GET|PUT /api/v1/loyalty/program``: the program's rules (accrual, tiers, stacking).
- ``POST /api/v1/loyalty/promo-codes``: one code or a batch from a pattern.
- ``POST /api/v1/loyalty/gift-cards``: sell a gift card.
- ``POST /api/v1/loyalty/{external_id}/points``: a manual earn (positive) under an idempotency key.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from litestar import get, post, put
from litestar.exceptions import HTTPException, NotFoundException
from msgspec import Meta
from sqlalchemy import func, select

from kaskad import clock
from kaskad.api.auth import ANY_ROLE, MARKETER, roles
from kaskad.api.checkout import run
from kaskad.loyalty import balance, codes, ledger, program
from kaskad.loyalty.models import CodeUse, LedgerEntry, LoyaltyCode
from kaskad.runtime import Runtime
from kaskad.store.models import Contact

WRITE = roles("marketer", "integrator")


def _contact(session, external_id: str) -> int:
    cid = session.scalar(select(Contact.id).where(Contact.external_id == external_id))
    if cid is None:
        raise NotFoundException(f"no contact with external_id {external_id!r}")
    return cid


@get("/loyalty/program", guards=[ANY_ROLE], sync_to_thread=True, tags=["loyalty"])
def get_program(runtime: Runtime) -> dict[str, Any]:
    """The program's rules."""
    with runtime.sessions() as session:
        return msgspec.to_builtins(program.load(session))


@put("/loyalty/program", guards=[MARKETER], sync_to_thread=True, tags=["loyalty"])
def put_program(runtime: Runtime, data: program.ProgramRules) -> dict[str, Any]:
    """Replace the program's rules (accrual, tiers, stacking)."""
    errors = data.validate()
    if errors:
        raise HTTPException(status_code=422, detail="; ".join(errors))
    return run(runtime, lambda s: (program.save(s, data), msgspec.to_builtins(data))[1])


@get("/loyalty/{external_id:str}", guards=[ANY_ROLE], sync_to_thread=True, tags=["loyalty"])
def standing(runtime: Runtime, external_id: str, history: int = 50) -> dict[str, Any]:
    """Balance with lots and expiry dates, tier and progress to the next tier, and the latest entries."""
    with runtime.sessions() as session:
        cid = _contact(session, external_id)
        out = balance(session, cid)
        rows = session.scalars(
            select(LedgerEntry).where(LedgerEntry.contact_id == cid).order_by(LedgerEntry.id.desc()).limit(history)
        ).all()
        out["history"] = [
            {"at": e.created_at.isoformat(), "kind": e.kind, "points": str(e.amount), "reason": e.reason, "lot": e.lot_id}
            for e in rows
        ]
        return {"contact": external_id, **out}


class PointsRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    points: Annotated[int, Meta(gt=0)]
    idempotency_key: Annotated[str, Meta(min_length=1, max_length=200)]
    reason: str = "manual"
    expires_at: datetime | None = None


@post("/loyalty/{external_id:str}/points", guards=[WRITE], status_code=200, sync_to_thread=True, tags=["loyalty"])
def add_points(runtime: Runtime, external_id: str, data: PointsRequest) -> dict[str, Any]:
    """Earn points by hand (a goodwill gesture, a migration from an old system)."""
    return run(runtime, lambda s: ledger.earn(s, _contact(s, external_id), data.points, f"api:{data.idempotency_key}",
                                              data.reason, expires_at=data.expires_at))


class PromoCodes(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    percent: Annotated[Decimal, Meta(description="More than 0, at most 100")]
    code: Annotated[str | None, Meta(description="One fixed code (e.g. SUMMER10); else pattern and count")] = None
    pattern: Annotated[str, Meta(description="# digit, @ letter, * either")] = "PROMO-######"
    count: Annotated[int, Meta(ge=1, le=100_000)] = 1
    max_uses: Annotated[int, Meta(ge=1)] | None = 1
    per_customer_limit: Annotated[int, Meta(ge=1)] | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    min_order: Decimal | None = None
    combinable: bool = True
    contact: Annotated[str | None, Meta(description="external_id: a personal code only this customer can use")] = None
    batch: str | None = None


@post("/loyalty/promo-codes", guards=[WRITE], status_code=201, sync_to_thread=True, tags=["loyalty"])
def create_promo_codes(runtime: Runtime, data: PromoCodes) -> dict[str, Any]:
    """Create one code or ``count`` codes from ``pattern``; returns them."""

    if not (0 < data.percent <= 100):
        raise HTTPException(status_code=422, detail="percent: must be more than 0 and at most 100")

    def work(session):
        owner = _contact(session, data.contact) if data.contact else None
        if data.code:
            if codes.find(session, data.code) is not None:
                raise HTTPException(status_code=409, detail=f"code {codes.normalise(data.code)} exists already")
            made = [codes.normalise(data.code)]
        else:
            made = codes.new_codes(session, data.pattern, data.count)
        for c in made:
            codes.issue(session, code=c, kind="promo", contact_id=owner, percent=data.percent,
                        valid_from=data.valid_from, valid_until=data.valid_until, max_uses=data.max_uses,
                        per_customer_limit=data.per_customer_limit, min_order=data.min_order,
                        combinable=data.combinable, batch=data.batch)
        return {"codes": made, "batch": data.batch}

    return run(runtime, work)


class GiftCardRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    amount: Annotated[Decimal, Meta(description="Positive")]
    code: str | None = None
    pattern: str = "GC-****-****"
    valid_until: datetime | None = None


@post("/loyalty/gift-cards", guards=[WRITE], status_code=201, sync_to_thread=True, tags=["loyalty"])
def create_gift_card(runtime: Runtime, data: GiftCardRequest) -> dict[str, Any]:
    """Sell a gift card: a code with a money balance, spent in parts at checkout."""

    if data.amount <= 0:
        raise HTTPException(status_code=422, detail="amount: must be positive")

    def work(session):
        code = codes.normalise(data.code) if data.code else codes.new_codes(session, data.pattern, 1)[0]
        codes.issue(session, code=code, kind="gift_card", balance=data.amount, valid_until=data.valid_until)
        return {"code": code, "balance": str(data.amount)}

    return run(runtime, work)


@get("/loyalty/codes/{code:str}", guards=[ANY_ROLE], sync_to_thread=True, tags=["loyalty"])
def code_status(runtime: Runtime, code: str) -> dict[str, Any]:
    """A code's state: kind, uses, balance, validity, and a melting discount's current step."""
    with runtime.sessions() as session:
        row: LoyaltyCode | None = codes.find(session, code)
        if row is None:
            raise NotFoundException(f"no code {code!r}")
        now = clock.now()
        pct, _ = codes.melting_percent(row, now) if row.kind == "melting" else (row.percent, None)
        nxt = codes.next_step_at(row, now) if row.kind == "melting" else None
        return {
            "code": row.code, "kind": row.kind, "percent": None if pct is None else str(pct),
            "uses": row.uses if codes.counted(row) else session.scalar(
                select(func.count()).where(CodeUse.code_id == row.id, CodeUse.status != "released")),
            "max_uses": row.max_uses,
            "balance": None if row.balance is None else str(row.balance),
            "valid_from": row.valid_from.isoformat(),
            "valid_until": row.valid_until.isoformat() if row.valid_until else None,
            "next_step_at": nxt.isoformat() if nxt else None, "steps": row.details.get("steps"),
        }


routes = [get_program, put_program, add_points, create_promo_codes, create_gift_card, code_status, standing]
