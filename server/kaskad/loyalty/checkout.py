"""Checkout: quote (dry run) → redeem (reserve) → confirm | cancel; refund.

Order of application, each on the amount left by the one before:

1. melting discount, 2. promo codes (percent, the larger first), 3. points
(each point worth ``stacking.point_value``, at most ``max_points_percent`` of
what is left), 4. gift cards (a means of payment, not a discount).
Code discounts and points together never exceed ``max_discount_percent`` of the
subtotal. A code that is not combinable is used alone: the best such
code wins and the others are listed in ``rejected`` with the reason.
Money rounds half-up to 0.01 per discount; points are whole and round down.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, NamedTuple

import msgspec
from msgspec import Meta
from sqlalchemy import select

from kaskad import clock
from kaskad.loyalty import checkout_store as store
from kaskad.loyalty import codes as codes_mod
from kaskad.loyalty import ledger, program, tiers
from kaskad.loyalty.ledger import ZERO, LoyaltyError, num, whole_points
from kaskad.loyalty.models import CodeUse, LoyaltyCode, Reservation
from kaskad.store.engine import core_reads, core_transaction

CENT = Decimal("0.01")
#: How long after a quote a till may redeem at the quoted melting step.
QUOTE_HOLD = timedelta(minutes=30)


def money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


class CartItem(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sku: str
    price: Annotated[Decimal, Meta(description="Unit price, not negative")]
    quantity: Annotated[Decimal, Meta(description="Positive")] = Decimal(1)
    category: str | None = None


class Cart(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    items: Annotated[list[CartItem], Meta(min_length=1)]
    currency: str = "EUR"
    contact: Annotated[str | None, Meta(description="The customer's external_id")] = None
    codes: list[str] = []
    points: Annotated[Decimal, Meta(description="Points the customer wants to spend")] = Decimal(0)
    quoted_at: Annotated[
        datetime | None, Meta(description="A quote's quoted_at: redeem keeps that quote's melting step (30 min)")
    ] = None


class Redeem(Cart, kw_only=True, forbid_unknown_fields=True):
    idempotency_key: Annotated[str, Meta(min_length=1, max_length=200)]
    order_id: str | None = None


class Confirm(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reservation: int


class Refund(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reservation: int
    idempotency_key: Annotated[str, Meta(min_length=1, max_length=200)]
    amount: Annotated[Decimal | None, Meta(description="Absent: refund everything not refunded yet")] = None


def contact_of(session, external_id: str | None, entered: list[str] = (),
               balance_at: datetime | None = None) -> store.Contact:
    """The contact (its id None without one; an unknown one is a 404), whether it has cashback
    offers, and what was read with it (see :func:`store.contact`)."""
    if external_id is None:
        return store.Contact(None, False)
    found = store.contact(session, external_id, entered, balance_at)
    if found.id is None:
        raise LoyaltyError("unknown_contact", f"no contact with external_id {external_id!r}", 404)
    return found


def _earn_for(session, cart: Cart, contact_id: int | None, rules: program.ProgramRules, paid: Decimal,
              subtotal: Decimal, at: datetime, offers: list | None = None, spend: Decimal | None = None) -> dict:
    """The points an order earns; ``offers`` are the contact's cashback codes and ``spend`` its
    spend in the tier window (each read here when None)."""
    acc = rules.accrual
    out: dict[str, Any] = {"points": "0", "details": [], "not_applied": []}
    if contact_id is None:
        out["not_applied"].append("no customer on the order: nothing to earn")
        return out
    if paid < acc.min_order:
        out["not_applied"].append(f"orders under {acc.min_order} earn no points")
        return out
    ratio = paid / subtotal if subtotal else ZERO
    base = ZERO
    for item in cart.items:
        if item.sku in acc.excluded_skus:
            out["not_applied"].append(f"{item.sku}: excluded from points")
            continue
        mult = acc.category_multipliers.get(item.category or "", Decimal(1))
        base += item.price * item.quantity * ratio * acc.points_per_unit * mult
    prog = tiers.progress(session, contact_id, rules, at, spend=spend)
    tier_mult = Decimal(prog["multiplier"])
    base *= tier_mult
    out["details"].append({"rule": "accrual", "tier": prog["tier"], "multiplier": num(tier_mult),
                           "points": num(whole_points(base))})
    if offers is None:
        offers = store.codes_and_offers(session, [], contact_id, lock=False)[1]
    best = None
    for offer in offers:
        if offer.valid_from > at or (offer.valid_until is not None and at >= offer.valid_until):
            continue
        if offer.min_order is not None and paid < offer.min_order:
            out["not_applied"].append(f"cashback {offer.percent}%: the order must be at least {offer.min_order}")
            continue
        if best is None or offer.percent > best.percent:
            best = offer
    extra = ZERO
    if best is not None:
        extra = paid * best.percent / 100
        out["details"].append({"rule": "cashback", "percent": num(best.percent), "points": num(whole_points(extra)),
                               "valid_until": best.valid_until.isoformat() if best.valid_until else None})
    total = whole_points(base) + whole_points(extra)
    out["points"] = num(total)
    out["available_at"] = program.after(acc.pending, at).isoformat()
    return out


class Facts(NamedTuple):
    """What a checkout's decision reads from the database, read before deciding: the sync
    path (:func:`read_facts`) and the asynchronous one (:mod:`kaskad.loyalty.checkout_async`)
    read the same facts, and :func:`decide` turns them into the quote and plan alike."""

    rules: program.ProgramRules
    found: dict[str, Any]  # the entered codes that exist, by code
    cashback: list  # the contact's cashback offers
    lots: list | None  # live lots, soonest-expiring first (redeem spends from these)
    balance: Decimal | None  # the live balance (a quote reads only this)
    uses: dict[int, int]  # code id → this contact's uses, for codes limited per customer
    spend: Decimal | None  # the contact's spend in the tier window (None without tiers or contact)


def validate(cart: Cart) -> None:
    for i, item in enumerate(cart.items):
        if item.price < 0 or item.quantity <= 0:
            raise LoyaltyError("invalid_cart", f"items[{i}]: price must not be negative and quantity must be positive", 422)
    if cart.points < 0:
        raise LoyaltyError("invalid_cart", "points: must not be negative", 422)


def entered_codes(cart: Cart) -> list[str]:
    return sorted({codes_mod.normalise(c) for c in cart.codes})


def needs_balance(cart: Cart, contact_id: int | None) -> bool:
    return contact_id is not None and whole_points(cart.points) > 0


def read_facts(session, cart: Cart, contact_id: int | None, at: datetime, lock: bool = False,
               offers: bool = True, lots_read: list | None = None, codes_read: store.Codes | None = None,
               balance_read: Decimal | None = None) -> Facts:
    """The facts for :func:`decide`. Locks when ``lock``: the counted codes entered, then
    the lots are read under the account lock the caller holds. ``offers`` false: the contact
    is known to have no cashback offers. ``lots_read``: the live lots read already, without
    ``lock`` (the optimistic redeem checks them as it writes); ``codes_read`` and
    ``balance_read``: the entered codes and the offers, and the live balance, read already
    without ``lock`` (a quote reads them with the contact)."""
    rules = program.load(session)
    if codes_read is not None and not lock:
        found, cashback = codes_read
    else:
        found, cashback = store.codes_and_offers(session, entered_codes(cart), contact_id, lock=lock, offers=offers)
    uses = {code.id: codes_mod.uses_by(session, code.id, contact_id) for code in found.values()
            if code.per_customer_limit is not None and contact_id is not None}
    lots, balance = None, None
    if needs_balance(cart, contact_id):
        if lock or lots_read is not None:  # redeem spends from these lots; the account lock keeps them as read
            lots = lots_read if lots_read is not None else store.live_lots(session, contact_id, at)
        else:
            balance = balance_read if balance_read is not None else store.balance(session, contact_id, at)
    spend = tiers.spend_in_window(session, contact_id, rules, at) if rules.tiers and contact_id is not None else None
    return Facts(rules, found, cashback, lots, balance, uses, spend)


def compute(session, cart: Cart, contact_id: int | None, at: datetime, lock: bool = False,
            offers: bool = True, lots_read: list | None = None, codes_read: store.Codes | None = None,
            balance_read: Decimal | None = None) -> tuple[dict, dict]:
    """The quote (JSON-ready) and the plan redeem carries out. Reads only (locks when ``lock``);
    see :func:`read_facts` for the arguments."""
    validate(cart)
    facts = read_facts(session, cart, contact_id, at, lock, offers, lots_read, codes_read, balance_read)
    return decide(cart, facts, contact_id, at)


def decide(cart: Cart, facts: Facts, contact_id: int | None, at: datetime) -> tuple[dict, dict]:
    """The quote and the plan from the cart and the facts read for it; reads nothing."""
    rules = facts.rules
    st = rules.stacking
    subtotal = money(sum((i.price * i.quantity for i in cart.items), ZERO))
    cap = money(subtotal * st.max_discount_percent / 100)
    rejected: list[dict] = []
    percent_codes: list[tuple[Decimal, LoyaltyCode, dict | None]] = []
    gift_cards: list[LoyaltyCode] = []
    referral: LoyaltyCode | None = None
    step_at = at
    if cart.quoted_at is not None and at - QUOTE_HOLD <= cart.quoted_at <= at:
        step_at = cart.quoted_at
    found, cashback = facts.found, facts.cashback
    for raw in entered_codes(cart):
        code = found.get(raw)
        reason = codes_mod.why_not(None, code, contact_id, subtotal, step_at if code and code.kind == "melting" else at,
                                   uses=facts.uses.get(code.id, 0) if code is not None else None)
        if reason:
            rejected.append({"code": raw, "reason": reason})
            continue
        if code.kind == "gift_card":
            gift_cards.append(code)
        elif code.kind == "referral":
            if referral is not None:
                rejected.append({"code": raw, "reason": "only one referral code per order"})
            else:
                referral = code
        elif code.kind == "melting":
            pct, step = codes_mod.melting_percent(code, step_at)
            percent_codes.append((pct, code, step))
        else:
            percent_codes.append((code.percent, code, None))
    # Exclusivity: a non-combinable code stands alone; the best one wins.
    if len(percent_codes) > 1 and any(not c.combinable for _, c, _ in percent_codes):
        best = max(percent_codes, key=lambda p: (p[0], p[1].kind == "melting"))
        for p in percent_codes:
            if p is not best:
                rejected.append({"code": p[1].code, "reason": f"not combinable with {best[1].code}"})
        percent_codes = [best]
    percent_codes.sort(key=lambda p: (p[1].kind != "melting", -p[0], p[1].code))
    running, total_discount, discounts = subtotal, ZERO, []
    for pct, code, step in percent_codes:
        amount = money(running * pct / 100)
        note = None
        if total_discount + amount > cap:
            amount, note = cap - total_discount, f"capped: discounts stop at {st.max_discount_percent}% of the order"
        d = {"code": code.code, "kind": "melting_discount" if code.kind == "melting" else "promo_code",
             "percent": num(pct), "amount": str(money(amount)), "on": str(money(running))}
        if step:
            d["step"] = step
        if note:
            d["note"] = note
        discounts.append(d)
        running -= amount
        total_discount += amount
    # Points.
    points_info: dict[str, Any] = {"requested": num(cart.points), "spent": "0", "value": "0"}
    spend = whole_points(cart.points)
    lots: list = []
    if spend != cart.points:
        points_info["note"] = "points are whole; the fraction was dropped"
    if spend > 0:
        if contact_id is None:
            rejected.append({"points": num(cart.points), "reason": "no customer on the order: no points to spend"})
            spend = ZERO
        else:
            if facts.lots is not None:
                lots = facts.lots
                balance = sum((lot.remaining for lot in lots), ZERO)
            else:
                balance = facts.balance
            points_info["balance"] = num(balance)
            limit_money = min(money(running * st.max_points_percent / 100), cap - total_discount)
            limit = whole_points(limit_money / st.point_value)
            allowed = min(spend, balance, max(limit, ZERO))
            if allowed < spend:
                why = (f"the balance is {num(balance)}" if balance < spend and balance <= limit
                       else f"points may pay at most {st.max_points_percent}% of the order and discounts stop at "
                            f"{st.max_discount_percent}%: {num(limit)} points")
                rejected.append({"points": num(spend), "reason": f"only {num(allowed)} points can be spent: {why}"})
                spend = allowed
    value = money(spend * st.point_value)
    points_info["spent"], points_info["value"] = num(spend), str(value)
    running -= value
    net = running  # what the goods cost after discounts and points; refunds are measured against it
    # Gift cards pay what is left.
    gifts = []
    for card in gift_cards:
        used = min(card.balance, running)
        if used <= 0:
            rejected.append({"code": card.code, "reason": "nothing left to pay"})
            continue
        gifts.append({"code": card.code, "amount": str(money(used)), "balance_after": str(money(card.balance - used))})
        running -= used
    paid_money = net  # gift cards were bought with money: they earn like money
    earn = _earn_for(None, cart, contact_id, rules, paid_money, subtotal, at, cashback, facts.spend)
    if referral is not None:
        earn["referral"] = {"code": referral.code, **referral.details}
    quote = {
        "quoted_at": at.isoformat(),
        "currency": cart.currency,
        "subtotal": str(subtotal),
        "discounts": discounts,
        "points": points_info,
        "gift_cards": gifts,
        "total_discount": str(money(total_discount + value)),
        "to_pay": str(money(running)),
        "earn": earn,
        "rejected": rejected,
    }
    plan = {"codes": [c for _, c, _ in percent_codes], "gift_cards": gift_cards, "gifts": gifts,
            "referral": referral, "spend": spend, "lots": lots, "net": net, "discounts": discounts}
    return quote, plan


def quote(session, cart: Cart) -> dict:
    now = clock.now()
    found = contact_of(session, cart.contact, entered_codes(cart), now if whole_points(cart.points) > 0 else None)
    return compute(session, cart, found.id, now, offers=found.offers, codes_read=found.codes,
                   balance_read=found.balance)[0]


def redeem(session, req: Redeem, optimistic: bool = False) -> dict | None:
    """Reserve what the cart's quote gives: spends points, takes code uses and gift-card
    balance. All or nothing: if any code or the points cannot be used, nothing changes.

    A repeat with the same ``idempotency_key`` returns the first answer. Every check is
    done before the first write, so a refusal leaves no trace even in a caller's open
    transaction; the reservation's unique key settles two first calls racing.

    ``optimistic`` (PostgreSQL, ``session`` outside a transaction): read without locks and
    write in one statement that locks the account, checks that the lots and counted codes
    it takes from are as they were read, and writes nothing if not. Returns None whenever
    this cannot answer for sure (a change in between, a refusal, a per-customer limit, a
    first loyalty call): then the caller runs the locked redeem. No BEGIN and COMMIT
    round trips: two of a redeem's five or so.
    """
    if not req.idempotency_key:
        raise LoyaltyError("idempotency_key_required", "send an idempotency key with every loyalty operation", 422)
    key = f"redeem:{req.idempotency_key}"
    now = clock.now()
    if req.contact is None:
        contact_id, first, offers = None, store.stored_result(session, key), False
    elif optimistic:
        found = store.read_contact(session, req.contact, key, now if req.points > 0 else None, entered_codes(req))
        if found is None:  # no such contact (the locked redeem says so) or no account yet
            return None
        contact_id, first, offers, lots, codes = found
    else:
        contact_id, first, offers = store.lock_contact(session, req.contact, key)
    if first is not None:
        return first
    q, plan = compute(session, req, contact_id, now, lock=not optimistic, offers=offers,
                      lots_read=lots if optimistic and contact_id is not None else None,
                      codes_read=codes if optimistic and contact_id is not None else None)
    if optimistic and optimistic_declines(q, plan):
        return None
    if q["rejected"]:
        # The lock may have waited on a first call with this key: its answer stands.
        first = store.stored_result(session, key)
        if first is not None:
            return first
        raise LoyaltyError("not_redeemable", "; ".join(
            f"{r.get('code', 'points')}: {r['reason']}" for r in q["rejected"]))
    result, write = redemption(req, key, contact_id, q, plan, now, optimistic)
    res_id = store.write_redeem(session, write)
    if res_id is None and optimistic:
        return None
    if res_id is None:  # a first call with this key committed while this one computed
        first = store.stored_result(session, key)
        if first is None:
            raise LoyaltyError("idempotency_conflict", f"reservation key {req.idempotency_key!r} is taken")
        return first
    return {"reservation": res_id, **result}


def optimistic_declines(q: dict, plan: dict) -> bool:
    """The optimistic redeem leaves this to the locked one: it refuses for sure, or must count
    the customer's uses of a code limited per customer under its lock."""
    return bool(q["rejected"]) or any(
        c.per_customer_limit is not None for c in [*plan["codes"], *plan["gift_cards"], plan["referral"]] if c)


def redemption(req: Redeem, key: str, contact_id: int | None, q: dict, plan: dict, now: datetime,
               optimistic: bool) -> tuple[dict, dict]:
    """The answer a redeem stores and the arguments of :func:`checkout_store.write_redeem`
    for the plan :func:`decide` made: which lots the points come from (soonest-expiring first),
    the code uses, and the counted codes with the state they were read in."""
    spends, left = [], plan["spend"]
    for lot in plan["lots"]:  # soonest-expiring first
        if left <= 0:
            break
        part = min(lot.remaining, left)
        spends.append({"lot": lot.id, "part": part})
        left -= part
    if left > 0:  # decide() never offers more than the live lots hold
        raise LoyaltyError("insufficient_points", f"{left} points more than the balance were asked")
    if plan["spend"] > 0:
        q["points"]["lots"] = [[s["lot"], num(s["part"])] for s in spends]
    taken = [(c, Decimal(d["amount"])) for c, d in zip(plan["codes"], plan["discounts"])]
    taken += [(c, Decimal(g["amount"])) for c, g in zip(plan["gift_cards"], plan["gifts"])]
    if plan["referral"] is not None:
        taken.append((plan["referral"], ZERO))
    result = store.redeemed(q)
    return result, {
        "key": req.idempotency_key, "op_key": key, "contact_id": contact_id, "order_ref": req.order_id, "quote": q,
        "net": plan["net"], "points_spent": plan["spend"],
        "reason": f"checkout {req.idempotency_key}"[:120], "now": now, "spends": spends,
        "uses": [{"code_id": c.id, "amount": amount} for c, amount in taken],
        "counted": [{"code_id": c.id, "taken": amount if c.kind == "gift_card" else ZERO, "uses": c.uses,
                     "balance": c.balance} for c, amount in taken if codes_mod.counted(c)],
        "remaining": {lot.id: lot.remaining for lot in plan["lots"]} if optimistic else None,
    }


def redeem_now(engine, req: Redeem) -> dict:
    """A till's redeem on connections of its own, as the API runs it: on PostgreSQL the
    optimistic :func:`redeem` outside a transaction, then, when that cannot answer, the
    locked one in a transaction (the only one elsewhere)."""
    if engine.dialect.name == "postgresql":
        with core_reads(engine) as conn:
            first = redeem(conn, req, optimistic=True)
        if first is not None:
            return first
    with core_transaction(engine) as conn:
        return redeem(conn, req)


def _reservation(session, reservation_id: int) -> Reservation:
    res = session.get(Reservation, reservation_id)
    if res is None:
        raise LoyaltyError("unknown_reservation", f"no reservation {reservation_id}", 404)
    return res


def confirm(session, reservation_id: int) -> dict:
    """The order is paid: code uses become final and the order's points are earned (pending first)."""
    res = _reservation(session, reservation_id)

    def work(op):
        session.refresh(res, with_for_update=True)
        if res.status != "reserved":
            raise LoyaltyError("not_reserved", f"reservation {res.id} is {res.status}; only a reserved one can be confirmed")
        now = clock.now()
        rules = program.load(session)
        res.status, res.confirmed_at = "confirmed", now
        uses = session.scalars(select(CodeUse).where(CodeUse.reservation_id == res.id)).all()
        for use in uses:
            use.status = "used"
        result: dict[str, Any] = {"reservation": res.id, "status": "confirmed", "earned": "0"}
        if res.contact_id is None:
            return result
        earned = Decimal(res.quote["earn"]["points"])
        if earned > 0:
            lot = ledger.add_lot(session, op, res.contact_id, earned, f"order {res.order_ref or res.id}",
                                 program.after(rules.accrual.pending, now), None)
            lot.expires_at = program.after(rules.accrual.expires_in, lot.available_at)
            res.points_earned, res.earn_lot_id = earned, lot.id
            result.update(earned=num(earned), available_at=lot.available_at.isoformat())
            ledger.emit(session, res.contact_id, "points_changed", {"earned": num(earned), "reservation": res.id},
                        key=f"loyalty:points_changed:confirm:{res.id}", at=now)
        ref = res.quote["earn"].get("referral")
        if ref:
            result["referral"] = _referral_rewards(session, op, res, ref, now)
        result["tier"] = tiers.recompute(session, res.contact_id, rules, now, f"confirm:{res.id}")
        return result

    return ledger.once(session, f"confirm:{reservation_id}", "confirm", res.contact_id, work)


def _referral_rewards(session, op, res: Reservation, ref: dict, now) -> dict:
    earlier = session.scalar(
        select(Reservation.id).where(Reservation.contact_id == res.contact_id, Reservation.id != res.id,
                                     Reservation.confirmed_at.is_not(None)).limit(1)
    )
    if earlier is not None:
        return {"rewarded": False, "reason": "not the friend's first paid order"}
    code = codes_mod.find(session, ref["code"])
    out = {"rewarded": True}
    if ref.get("friend_points") and ref.get("reward") in ("friend", "both"):
        ledger.add_lot(session, op, res.contact_id, Decimal(ref["friend_points"]), f"referral welcome {code.code}")
        out["friend_points"] = ref["friend_points"]
    if ref.get("referrer_points") and ref.get("reward") in ("referrer", "both"):
        ledger.lock_account(session, code.contact_id)
        ledger.add_lot(session, op, code.contact_id, Decimal(ref["referrer_points"]), f"referral of {res.contact_id}")
        out["referrer_points"] = ref["referrer_points"]
    return out


def cancel(session, reservation_id: int) -> dict:
    """Undo a reservation that was not confirmed: points, code uses and gift-card balance come back."""
    res = _reservation(session, reservation_id)

    def work(op):
        session.refresh(res, with_for_update=True)
        if res.status != "reserved":
            raise LoyaltyError("not_reserved", f"reservation {res.id} is {res.status}; a confirmed order is refunded, not cancelled")
        res.status = "cancelled"
        if res.points_spent > 0:
            ledger.put_back(session, op, res.quote["points"]["lots"], res.points_spent, f"cancel {res.id}")
        _release(session, res)
        return {"reservation": res.id, "status": "cancelled", "points_returned": num(res.points_spent)}

    return ledger.once(session, f"cancel:{reservation_id}", "cancel", res.contact_id, work)


def _release(session, res: Reservation) -> None:
    uses = session.scalars(select(CodeUse).where(CodeUse.reservation_id == res.id, CodeUse.status != "released")
                           .order_by(CodeUse.code_id)).all()
    for use in uses:
        use.status = "released"
        code = session.get(LoyaltyCode, use.code_id)
        if not codes_mod.counted(code):
            continue
        code = session.scalars(select(LoyaltyCode).where(LoyaltyCode.id == use.code_id).with_for_update()
                               .execution_options(populate_existing=True)).one()
        code.uses -= 1
        if code.kind == "gift_card":
            code.balance += use.amount


def refund(session, req: Refund) -> dict:
    """Refund all or part of a confirmed order. Earned and spent points and gift-card money
    go back in proportion to the refunded share of ``net``; the last refund makes them exact."""
    res = _reservation(session, req.reservation)

    def work(op):
        session.refresh(res, with_for_update=True)
        if res.status not in ("confirmed", "partially_refunded"):
            raise LoyaltyError("not_refundable", f"reservation {res.id} is {res.status}; only a confirmed order is refunded")
        left = res.net - res.refunded_amount
        amount = left if req.amount is None else Decimal(req.amount)
        if amount <= 0:
            raise LoyaltyError("invalid_refund", "amount: must be positive", 422)
        if amount > left:
            raise LoyaltyError("refund_too_large", f"only {left} is left to refund on reservation {res.id}", 422)
        res.refunded_amount += amount
        full = res.refunded_amount == res.net
        share = Decimal(1) if full or res.net == 0 else res.refunded_amount / res.net
        out: dict[str, Any] = {"reservation": res.id, "refunded": str(money(amount))}
        if res.contact_id is not None:
            target = res.points_earned if full else whole_points(res.points_earned * share)
            took = ledger.claw_back(session, op, res.contact_id, res.earn_lot_id, target - res.points_reversed,
                                    f"refund {res.id}")
            res.points_reversed += took
            unrecovered = target - res.points_reversed
            target = res.points_spent if full else whole_points(res.points_spent * share)
            back = ledger.put_back(session, op, res.quote["points"].get("lots", []), target - res.points_restored,
                                   f"refund {res.id}", already=res.points_restored)
            res.points_restored += back
            out.update(points_reversed=num(took), points_returned=num(back), unrecovered=num(unrecovered))
        gifts = []
        for use in session.scalars(select(CodeUse).where(CodeUse.reservation_id == res.id)).all():
            code = session.get(LoyaltyCode, use.code_id)
            if code.kind != "gift_card":
                continue
            session.refresh(code, with_for_update=True)
            target = use.amount if full else money(use.amount * share)
            already = Decimal(res.quote.get("gift_restored", {}).get(code.code, "0"))
            back = target - already
            code.balance += back
            gifts.append({"code": code.code, "returned": str(money(back))})
            res.quote = {**res.quote, "gift_restored": {**res.quote.get("gift_restored", {}), code.code: num(target)}}
            res.gift_restored += back
        out["gift_cards"] = gifts
        res.status = "refunded" if full else "partially_refunded"
        out["status"] = res.status
        if res.contact_id is not None:
            rules = program.load(session)
            out["tier"] = tiers.recompute(session, res.contact_id, rules, clock.now(), f"refund:{req.idempotency_key}")
        return out

    return ledger.once(session, f"refund:{res.id}:{req.idempotency_key}", "refund", res.contact_id, work)
