"""Codes: promo codes (bulk from a pattern), personal melting discounts, gift cards,
referral codes and cashback offers — one table, one lookup, one lock."""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from kaskad import clock
from kaskad.flow.durations import parse_duration
from kaskad.loyalty.ledger import LoyaltyError, num
from kaskad.loyalty.models import CodeUse, LoyaltyCode

_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: read aloud at a till
_DIGITS = "23456789"  # no 0 or 1


def from_pattern(pattern: str) -> str:
    """``#`` becomes a digit, ``@`` a letter, ``*`` either; other characters stay."""
    out = []
    for ch in pattern:
        if ch == "#":
            out.append(secrets.choice(_DIGITS))
        elif ch == "@":
            out.append(secrets.choice(_LETTERS))
        elif ch == "*":
            out.append(secrets.choice(_LETTERS + _DIGITS))
        else:
            out.append(ch)
    return "".join(out)


def combinations(pattern: str) -> int:
    n = 1
    for ch in pattern:
        n *= {"#": len(_DIGITS), "@": len(_LETTERS), "*": len(_LETTERS + _DIGITS)}.get(ch, 1)
    return n


def plain(value) -> int | float:
    """A number as templates should show it: ``30`` not ``30.0``."""
    d = Decimal(str(value))
    return int(d) if d == d.to_integral_value() else float(d)


def normalise(code: str) -> str:
    return code.strip().upper()


def new_codes(session, pattern: str, count: int) -> list[str]:
    """``count`` codes from ``pattern`` that exist nowhere yet."""
    if combinations(pattern) < count * 4:
        raise LoyaltyError(
            "pattern_too_small",
            f"pattern {pattern!r} allows {combinations(pattern)} codes; use more # or @ for {count} codes",
            422,
        )
    chosen: set[str] = set()
    while len(chosen) < count:
        batch = {normalise(from_pattern(pattern)) for _ in range(count - len(chosen))} - chosen
        taken = set(session.scalars(select(LoyaltyCode.code).where(LoyaltyCode.code.in_(batch))).all())
        chosen |= batch - taken
    return sorted(chosen)


def melting_steps(steps: list[dict], issued: datetime) -> list[dict]:
    """Absolute steps from ``[{"percent", "for"}]``; each step must last, percents never rise."""
    errors, out, start, last = [], [], issued, None
    if not steps:
        errors.append("steps: give at least one step")
    for i, step in enumerate(steps):
        percent = Decimal(str(step["percent"]))
        end = parse_duration(step["for"]).add_to(start)
        if not (0 < percent <= 100):
            errors.append(f"steps[{i}].percent: must be more than 0 and at most 100, got {percent}")
        if end <= start:
            errors.append(f"steps[{i}].for: must be a positive duration, got {step['for']!r}")
        if last is not None and percent > last:
            errors.append(f"steps[{i}].percent: {percent} is higher than the step before ({last}); percents never rise")
        out.append({"percent": num(percent), "from": start.isoformat(), "until": end.isoformat()})
        start, last = end, percent
    if errors:
        raise LoyaltyError("invalid_steps", "; ".join(errors), 422)
    return out


def melting_percent(code: LoyaltyCode, at: datetime) -> tuple[Decimal | None, dict | None]:
    """The step in force at ``at`` (percent, step) or (None, None)."""
    for step in code.details.get("steps", []):
        if datetime.fromisoformat(step["from"]) <= at < datetime.fromisoformat(step["until"]):
            return Decimal(step["percent"]), step
    return None, None


def next_step_at(code: LoyaltyCode, at: datetime) -> datetime | None:
    for step in code.details.get("steps", []):
        until = datetime.fromisoformat(step["until"])
        if until > at:
            return until
    return None


def issue(session, *, code: str, kind: str, valid_until: datetime | None, **fields: Any) -> LoyaltyCode:
    row = LoyaltyCode(
        code=normalise(code),
        kind=kind,
        valid_from=fields.pop("valid_from", None) or clock.now(),
        valid_until=valid_until,
        created_at=clock.now(),
        details=fields.pop("details", {}),
        **fields,
    )
    session.add(row)
    return row


def counted(code: LoyaltyCode) -> bool:
    """Whether redeeming changes the code's row: a use limit or a gift-card balance.
    Unlimited codes are not locked or updated, so a popular code is no hot row
    (its uses are the rows in ``loyalty_code_uses``)."""
    return code.max_uses is not None or code.kind == "gift_card"


def find(session, code: str, lock: bool = False) -> LoyaltyCode | None:
    """The code; with ``lock``, a counted code's row is locked until the transaction ends."""
    q = select(LoyaltyCode).where(LoyaltyCode.code == normalise(code))
    row = session.scalar(q)
    if lock and row is not None and counted(row):
        row = session.scalar(q.with_for_update().execution_options(populate_existing=True))
    return row


def uses_by(session, code_id: int, contact_id: int) -> int:
    return session.scalar(
        select(func.count()).where(
            CodeUse.code_id == code_id, CodeUse.contact_id == contact_id, CodeUse.status != "released"
        )
    )


def why_not(session, code: LoyaltyCode | None, contact_id: int | None, subtotal: Decimal, at: datetime,
            uses: int | None = None) -> str | None:
    """The reason a code cannot be used now by this contact, or None when it can. ``uses``:
    the contact's uses of a code limited per customer, read by the caller (else read here)."""
    if code is None:
        return "unknown code"
    if code.kind == "cashback":
        return "a cashback offer applies by itself to its owner's orders; it is not a code to enter"
    if code.contact_id is not None and code.kind != "referral" and code.contact_id != contact_id:
        return "this is a personal code of another customer"
    if code.kind == "referral":
        if contact_id is None:
            return "a referral code needs the customer (contact) to reward"
        if code.contact_id == contact_id:
            return "a customer cannot use their own referral code"
    if at < code.valid_from:
        return f"not valid before {code.valid_from.isoformat()}"
    if code.valid_until is not None and at >= code.valid_until:
        return f"expired at {code.valid_until.isoformat()}"
    if code.min_order is not None and subtotal < code.min_order:
        return f"the order must be at least {code.min_order}"
    if code.max_uses is not None and code.uses >= code.max_uses:
        return f"this code has been used its {code.max_uses} time(s)"
    if code.per_customer_limit is not None:
        if contact_id is None:
            return "this code is limited per customer; identify the customer"
        if (uses if uses is not None else uses_by(session, code.id, contact_id)) >= code.per_customer_limit:
            return f"this customer has used this code {code.per_customer_limit} time(s) already"
    if code.kind == "gift_card" and (code.balance or 0) <= 0:
        return "the gift card is empty"
    if code.kind == "melting" and melting_percent(code, at)[0] is None:
        return "the discount has melted away"
    return None
