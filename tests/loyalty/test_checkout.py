from datetime import datetime, timedelta, timezone

from kaskad import clock
from kaskad.loyalty import ledger
from kaskad.mechanics import AwardContext
from kaskad.store.engine import transaction

from .helpers import check_invariants, contact

T0 = datetime(2026, 5, 4, 9, tzinfo=timezone.utc)
CART = {
    "currency": "EUR",
    "items": [
        {"sku": "TEA-1", "category": "tea", "quantity": 2, "price": "12.50"},
        {"sku": "CUP-7", "category": "ware", "quantity": 1, "price": "30.00"},
        {"sku": "GIFTBOX", "category": "ware", "quantity": 1, "price": "15.00"},
    ],
}
PROGRAM = {
    "accrual": {"points_per_unit": "0.1", "category_multipliers": {"tea": "2"}, "excluded_skus": ["GIFTBOX"],
                "min_order": "10", "pending": "P14D", "expires_in": "P365D"},
    "tiers": [{"name": "silver", "min_spend": "0"}, {"name": "gold", "min_spend": "100", "multiplier": "2"}],
    "tier_window": "P365D",
    "stacking": {"max_discount_percent": "50", "max_points_percent": "50", "point_value": "1"},
}


def award(runtime, mechanic, cid, config, key):
    import msgspec

    m = runtime.registry.mechanics[mechanic]
    with transaction(runtime.sessions) as s:
        return m.award(s, AwardContext(contact_id=cid, idempotency_key=key), msgspec.convert(config, m.config_type))


def test_quote_redeem_confirm_refund_reverses_exactly(api, runtime):
    cid = contact(runtime.sessions, "alice")
    with clock.travel(T0) as now:
        assert api.put("/api/v1/loyalty/program", role="marketer", json=PROGRAM).status_code == 200
        with transaction(runtime.sessions) as s:
            ledger.earn(s, cid, 40, "seed", "seed", expires_at=T0 + timedelta(days=30))
        r = api.post("/api/v1/loyalty/promo-codes", role="marketer",
                     json={"code": "SPRING10", "percent": 10, "max_uses": 100, "per_customer_limit": 1})
        assert r.status_code == 201, r.text
        body = {**CART, "contact": "alice", "codes": ["spring10", "NOPE"], "points": 20}
        q = api.post("/api/v1/checkout/quote", role="integrator", json=body).json()
        assert q["subtotal"] == "70.00"
        assert q["discounts"] == [{"code": "SPRING10", "kind": "promo_code", "percent": "10", "amount": "7.00",
                                   "on": "70.00"}]
        assert q["points"]["spent"] == "20" and q["to_pay"] == "43.00"
        assert q["rejected"] == [{"code": "NOPE", "reason": "unknown code"}]
        # earn on 43 paid of 70: tea 25*43/70*0.1*2 + cup 30*43/70*0.1 = 3.07 + 1.84 → 4 (GIFTBOX excluded)
        assert q["earn"]["points"] == "4"
        assert api.post("/api/v1/checkout/redeem", role="integrator", json={**body, "idempotency_key": "r1"}).status_code == 409
        body["codes"] = ["SPRING10"]
        red = api.post("/api/v1/checkout/redeem", role="integrator", json={**body, "idempotency_key": "r1", "order_id": "o-1"})
        assert red.status_code == 200, red.text
        res = red.json()["reservation"]
        again = api.post("/api/v1/checkout/redeem", role="integrator", json={**body, "idempotency_key": "r1", "order_id": "o-1"})
        assert again.json() == red.json()
        assert api.get("/api/v1/loyalty/alice").json()["points"] == "20"
        c = api.post("/api/v1/checkout/confirm", role="integrator", json={"reservation": res}).json()
        assert c["earned"] == "4" and c["tier"] == "silver"
        assert api.post("/api/v1/checkout/confirm", role="integrator", json={"reservation": res}).json() == c
        st = api.get("/api/v1/loyalty/alice").json()
        assert (st["points"], st["pending"]) == ("20", "4")
        assert st["tier"]["next_tier"] == "gold" and st["tier"]["spend_to_next"] == "57"
        # per-customer limit 1: a second order cannot use SPRING10
        q2 = api.post("/api/v1/checkout/quote", role="integrator", json={**CART, "contact": "alice", "codes": ["SPRING10"]}).json()
        assert "used this code 1 time" in q2["rejected"][0]["reason"]
        # partial refund of 21.50 of 43: half back, then the rest exactly
        p = api.post("/api/v1/checkout/refund", role="integrator",
                     json={"reservation": res, "amount": "21.50", "idempotency_key": "rf1"}).json()
        assert (p["points_reversed"], p["points_returned"], p["status"]) == ("2", "10", "partially_refunded"), (p, red.json())
        f = api.post("/api/v1/checkout/refund", role="integrator", json={"reservation": res, "idempotency_key": "rf2"}).json()
        assert (f["points_reversed"], f["points_returned"], f["status"]) == ("2", "10", "refunded")
        assert api.post("/api/v1/checkout/refund", role="integrator", json={"reservation": res, "idempotency_key": "rf2"}).json() == f
        st = api.get("/api/v1/loyalty/alice").json()
        assert (st["points"], st["pending"]) == ("40", "0")
        assert st["tier"]["spend"] == "0"
        with transaction(runtime.sessions) as s:
            assert check_invariants(s, cid) == 40


def test_cancel_gives_back_points_code_use_and_gift_card(api, runtime):
    cid = contact(runtime.sessions, "bob")
    with transaction(runtime.sessions) as s:
        ledger.earn(s, cid, 10, "seed", "seed")
    api.post("/api/v1/loyalty/promo-codes", role="marketer", json={"code": "ONCE", "percent": 20, "max_uses": 1})
    gc = api.post("/api/v1/loyalty/gift-cards", role="integrator", json={"amount": "25"}).json()["code"]
    body = {**CART, "contact": "bob", "codes": ["ONCE", gc], "points": 10, "idempotency_key": "b1"}
    red = api.post("/api/v1/checkout/redeem", role="integrator", json=body).json()
    # 70 -20% = 56; 10 points → 46; gift card pays 25 of it
    assert (red["total_discount"], red["gift_cards"][0]["amount"], red["to_pay"]) == ("24.00", "25.00", "21.00")
    assert api.get(f"/api/v1/loyalty/codes/{gc}").json()["balance"] == "0.0000"
    other = api.post("/api/v1/checkout/quote", role="integrator", json={**CART, "codes": ["ONCE"]}).json()
    assert other["rejected"][0]["reason"] == "this code has been used its 1 time(s)"
    c = api.post("/api/v1/checkout/cancel", role="integrator", json={"reservation": red["reservation"]})
    assert c.json()["points_returned"] == "10"
    assert api.post("/api/v1/checkout/confirm", role="integrator", json={"reservation": red["reservation"]}).status_code == 409
    assert api.get(f"/api/v1/loyalty/codes/{gc}").json()["balance"] == "25.0000"
    assert api.post("/api/v1/checkout/quote", role="integrator", json={**CART, "codes": ["ONCE"]}).json()["rejected"] == []
    assert api.get("/api/v1/loyalty/bob").json()["points"] == "10"


def test_stacking_exclusive_code_and_cap(api, runtime):
    contact(runtime.sessions, "carol")
    api.put("/api/v1/loyalty/program", role="marketer", json={"stacking": {"max_discount_percent": "30"}})
    api.post("/api/v1/loyalty/promo-codes", role="marketer", json={"code": "SOLO25", "percent": 25, "combinable": False, "max_uses": None})
    api.post("/api/v1/loyalty/promo-codes", role="marketer", json={"code": "TEN", "percent": 10, "max_uses": None})
    api.post("/api/v1/loyalty/promo-codes", role="marketer", json={"code": "TWENTY", "percent": 20, "max_uses": None})
    q = api.post("/api/v1/checkout/quote", role="integrator", json={**CART, "codes": ["TEN", "SOLO25"]}).json()
    assert [d["code"] for d in q["discounts"]] == ["SOLO25"]
    assert q["rejected"] == [{"code": "TEN", "reason": "not combinable with SOLO25"}]
    # combinable: the larger first, each on what is left; the cap (30% of 70 = 21) trims the second
    q = api.post("/api/v1/checkout/quote", role="integrator", json={**CART, "codes": ["TEN", "TWENTY"]}).json()
    assert [(d["code"], d["on"], d["amount"]) for d in q["discounts"]] == [("TWENTY", "70.00", "14.00"), ("TEN", "56.00", "5.60")]
    api.put("/api/v1/loyalty/program", role="marketer", json={"stacking": {"max_discount_percent": "25"}})
    q = api.post("/api/v1/checkout/quote", role="integrator", json={**CART, "codes": ["TEN", "TWENTY"]}).json()
    assert q["discounts"][1]["amount"] == "3.50" and "capped" in q["discounts"][1]["note"]
    assert q["total_discount"] == "17.50"


def test_melting_discount_quote_each_day_and_redeem_keeps_quoted_step(api, runtime):
    cid = contact(runtime.sessions, "dana")
    steps = [{"percent": 30, "for": "P1D"}, {"percent": 20, "for": "P1D"}, {"percent": 10, "for": "P1D"}]
    with clock.travel(T0) as now:
        got = award(runtime, "melting_discount", cid, {"steps": steps}, "run:1:melt")
        assert got["percent"] == 30 and got["next_step_at"] == (T0 + timedelta(days=1)).isoformat()
        assert award(runtime, "melting_discount", cid, {"steps": steps}, "run:1:melt") == got
        body = {**CART, "contact": "dana", "codes": [got["code"]]}
        for day, pct in [(0, "30"), (1, "20"), (2, "10")]:
            now[0] = T0 + timedelta(days=day, hours=3)
            q = api.post("/api/v1/checkout/quote", role="integrator", json=body).json()
            assert q["discounts"][0]["percent"] == pct, (day, q)
        now[0] = T0 + timedelta(days=3, minutes=1)
        q = api.post("/api/v1/checkout/quote", role="integrator", json=body).json()
        assert q["discounts"] == [] and q["rejected"][0]["reason"].startswith("expired")
        # quoted at 23:50 on day 1 (30%), redeemed after the boundary: 30% is kept
        now[0] = T0 + timedelta(hours=23, minutes=50)
        q = api.post("/api/v1/checkout/quote", role="integrator", json=body).json()
        now[0] = T0 + timedelta(days=1, minutes=5)
        red = api.post("/api/v1/checkout/redeem", role="integrator",
                       json={**body, "quoted_at": q["quoted_at"], "idempotency_key": "m1"}).json()
        assert red["discounts"][0]["percent"] == "30"
        from kaskad.loyalty import jobs
        from sqlalchemy import select
        from kaskad.store.models import Event
        with transaction(runtime.sessions) as s:
            jobs.announce_steps(s, T0 + timedelta(days=1, hours=2))
            jobs.announce_steps(s, T0 + timedelta(days=1, hours=2))
            ev = s.scalars(select(Event.properties).where(Event.name == "discount_step").order_by(Event.id)).all()
        assert [(e["percent_now"], e["percent_next"]) for e in ev] == [("30", "20"), ("20", "10")]


def test_melting_steps_must_not_rise(runtime):
    import pytest
    from kaskad.loyalty.ledger import LoyaltyError

    cid = contact(runtime.sessions, "erin")
    with pytest.raises(LoyaltyError) as err:
        award(runtime, "melting_discount", cid, {"steps": [{"percent": 10, "for": "P1D"}, {"percent": 20, "for": "P1D"}]}, "k")
    assert "never rise" in str(err.value)


def test_referral_rewards_both_on_first_paid_order_only(api, runtime):
    ref = contact(runtime.sessions, "rita")
    contact(runtime.sessions, "fred")
    code = award(runtime, "referral", ref, {"reward": "both", "referrer_points": 50, "friend_points": 20}, "run:r")["code"]
    assert api.post("/api/v1/checkout/quote", role="integrator", json={**CART, "contact": "rita", "codes": [code]}).json()[
        "rejected"][0]["reason"] == "a customer cannot use their own referral code"
    for n in (1, 2):
        red = api.post("/api/v1/checkout/redeem", role="integrator",
                       json={**CART, "contact": "fred", "codes": [code], "idempotency_key": f"f{n}"}).json()
        c = api.post("/api/v1/checkout/confirm", role="integrator", json={"reservation": red["reservation"]}).json()
        assert c["referral"]["rewarded"] is (n == 1)
    assert api.get("/api/v1/loyalty/rita").json()["points"] == "50"
    assert api.get("/api/v1/loyalty/fred").json()["points"] == "20"


def test_redeem_and_cancel_in_one_transaction_keep_code_counts(runtime):
    from decimal import Decimal

    from kaskad.loyalty import checkout, codes

    contact(runtime.sessions, "gus")
    with transaction(runtime.sessions) as s:
        codes.issue(s, code="TWICE", kind="promo", percent=Decimal(5), max_uses=2, valid_until=None)
        codes.issue(s, code="GC-1", kind="gift_card", balance=Decimal(30), valid_until=None)
    with transaction(runtime.sessions) as s:
        items = [checkout.CartItem(sku="A", price=Decimal(20))]
        red = checkout.redeem(s, checkout.Redeem(items=items, contact="gus", codes=["TWICE", "GC-1"], idempotency_key="g1"))
        assert codes.find(s, "TWICE").uses == 1 and codes.find(s, "GC-1").balance == 11
        checkout.cancel(s, red["reservation"])
        assert codes.find(s, "TWICE").uses == 0 and codes.find(s, "GC-1").balance == 30


def test_award_results_read_well_in_templates(runtime):
    cid = contact(runtime.sessions, "hana")
    promo = award(runtime, "promo_code", cid, {"percent": 15, "valid_for": "P14D", "pattern": "GIFT-####"}, "run:p")
    assert promo["percent"] == 15 and str(promo["percent"]) == "15"
    assert promo["code"].startswith("GIFT-") and len(promo["code"]) == 9
    assert award(runtime, "promo_code", cid, {"percent": 15, "valid_for": "P14D"}, "run:p") == promo
    cash = award(runtime, "cashback", cid, {"percent": 7.5, "valid_for": "P14D"}, "run:c")
    assert cash["percent"] == 7.5
    pts = award(runtime, "points", cid, {"points": 500, "expires_in": "P30D", "reason": "birthday"}, "run:b")
    assert pts["points"] == 500 and pts["expires_at"]
    assert award(runtime, "welcome_bonus", cid, {"points": 100}, "run:w1") == award(
        runtime, "welcome_bonus", cid, {"points": 100}, "run:w2")  # once per customer, whatever the run
    gc = award(runtime, "gift_card", cid, {"amount": 50}, "run:g")
    assert gc["balance"] == "50"
    with transaction(runtime.sessions) as s:
        assert check_invariants(s, cid) == 600


def test_a_later_send_shows_the_melting_discounts_current_percent(runtime):
    """What the engine does for a send after an award node: refresh, then render."""
    from kaskad import templates

    cid = contact(runtime.sessions, "ivy")
    mech = runtime.registry.mechanics["melting_discount"]
    steps = [{"percent": 30, "for": "P1D"}, {"percent": 20, "for": "P1D"}, {"percent": 10, "for": "P1D"}]
    tpl = "Code {{ awards.melt.code }}: {{ awards.melt.percent }}% off"
    with clock.travel(T0) as now:
        result = award(runtime, "melting_discount", cid, {"steps": steps}, "run:9:melt")
        seen = []
        for day in (0, 1, 2, 3):
            now[0] = T0 + timedelta(days=day, hours=1)
            with transaction(runtime.sessions) as s:
                seen.append(templates.render(tpl, {"awards": {"melt": mech.refresh(s, result)}}))
        code = result["code"]
        assert seen == [f"Code {code}: 30% off", f"Code {code}: 20% off", f"Code {code}: 10% off", f"Code {code}: 0% off"]


def test_a_cashback_offer_applies_without_a_code_and_only_to_its_owner(api, runtime):
    # Quote and redeem look for offers only when the contact has one: both sides of that flag.
    with_offer, without = contact(runtime.sessions, "ivo"), contact(runtime.sessions, "jan")
    award(runtime, "cashback", with_offer, {"percent": 10, "valid_for": "P14D"}, "run:cash")
    cart = {"currency": "EUR", "items": [{"sku": "A", "price": "50.00"}]}
    for who, rules in (("ivo", ["accrual", "cashback"]), ("jan", ["accrual"])):
        q = api.post("/api/v1/checkout/quote", role="integrator", json={**cart, "contact": who}).json()
        r = api.post("/api/v1/checkout/redeem", role="integrator",
                     json={**cart, "contact": who, "idempotency_key": f"cash-{who}"}).json()
        assert [d["rule"] for d in q["earn"]["details"]] == rules
        assert (r["earn"]["details"], r["earn"]["points"], r["status"]) == (q["earn"]["details"], q["earn"]["points"], "reserved")
    assert q["earn"]["points"] == "2"  # 50 x 0.05, no cashback for jan
    with transaction(runtime.sessions) as s:
        assert check_invariants(s, with_offer) == 0 and check_invariants(s, without) == 0


def test_many_codes_entered_each_get_an_answer_and_offers_still_apply(api, runtime):
    # Up to eight entered codes are read with one parameter each, more as one array: both, with an offer.
    cid = contact(runtime.sessions, "kim")
    award(runtime, "cashback", cid, {"percent": 10, "valid_for": "P14D"}, "run:kim")
    assert api.post("/api/v1/loyalty/promo-codes", role="marketer", json={"code": "TEN", "percent": 10}).status_code == 201
    cart = {"currency": "EUR", "items": [{"sku": "A", "price": "50.00"}], "contact": "kim"}
    for unknown in (2, 11):
        codes = ["ten"] + [f"NOPE{i}" for i in range(unknown)]
        q = api.post("/api/v1/checkout/quote", role="integrator", json={**cart, "codes": codes}).json()
        assert [d["code"] for d in q["discounts"]] == ["TEN"], q
        assert sorted(r["code"] for r in q["rejected"]) == sorted(f"NOPE{i}" for i in range(unknown))
        assert [d["rule"] for d in q["earn"]["details"]] == ["accrual", "cashback"]


def test_the_code_rows_read_as_json_have_every_column_of_the_table():
    # Quote and redeem read the codes with the contact as JSON rows (CodeRow); a column added
    # to loyalty_codes must be added there too, or the checkout would not see it.
    import msgspec

    from kaskad.loyalty.checkout_store import CodeRow
    from kaskad.loyalty.models import LoyaltyCode

    assert CodeRow.__struct_fields__ == tuple(c.name for c in LoyaltyCode.__table__.c)
    assert msgspec.structs.fields(CodeRow)  # a plain Struct: attribute access as on a row


def test_a_quote_counts_only_live_points_and_names_the_balance_when_asked_for_more(api, runtime):
    # The quote reads the balance with the contact: lots still pending or already expired do not count.
    cid = contact(runtime.sessions, "lea")
    with clock.travel(T0):
        with transaction(runtime.sessions) as s:
            ledger.earn(s, cid, 30, "live", "seed")
            ledger.earn(s, cid, 500, "pending", "seed", available_at=T0 + timedelta(days=3))
            ledger.earn(s, cid, 700, "expired", "seed", available_at=T0 - timedelta(days=9),
                        expires_at=T0 - timedelta(days=1))
        cart = {"currency": "EUR", "items": [{"sku": "A", "price": "200.00"}], "contact": "lea"}
        q = api.post("/api/v1/checkout/quote", role="integrator", json={**cart, "points": 20}).json()
        assert (q["points"]["balance"], q["points"]["spent"]) == ("30", "20")
        q = api.post("/api/v1/checkout/quote", role="integrator", json={**cart, "points": 50}).json()
        assert q["points"]["spent"] == "30"
        assert q["rejected"] == [{"points": "50", "reason": "only 30 points can be spent: the balance is 30"}]


def test_partial_refunds_give_each_lot_back_exactly_what_the_order_took(api, runtime):
    # An order spends 28 points: 15 from the lot expiring soonest, 13 from the one that never
    # expires. Half a refund, then the rest: each lot ends where it was before the order.
    from kaskad.loyalty.models import PointLot

    cid = contact(runtime.sessions, "max")
    with clock.travel(T0):
        with transaction(runtime.sessions) as s:
            ledger.earn(s, cid, 13, "forever", "seed")
            ledger.earn(s, cid, 15, "soon", "seed", expires_at=T0 + timedelta(days=10))
            before = {lot.id: lot.remaining for lot in s.query(PointLot).filter_by(contact_id=cid)}
        cart = {"currency": "EUR", "items": [{"sku": "A", "price": "127.00"}], "contact": "max", "points": 28}
        red = api.post("/api/v1/checkout/redeem", role="integrator", json={**cart, "idempotency_key": "max-1"}).json()
        assert red["points"]["spent"] == "28", red
        rid = red["reservation"]
        assert api.post("/api/v1/checkout/confirm", role="integrator", json={"reservation": rid}).status_code == 200
        half = api.post("/api/v1/checkout/refund", role="integrator",
                        json={"reservation": rid, "idempotency_key": "max-r1", "amount": "49.50"}).json()
        assert half["points_returned"] == "14", half
        rest = api.post("/api/v1/checkout/refund", role="integrator",
                        json={"reservation": rid, "idempotency_key": "max-r2"}).json()
        assert (rest["status"], rest["points_returned"]) == ("refunded", "14"), rest
        with transaction(runtime.sessions) as s:
            after = {lot.id: lot.remaining for lot in s.query(PointLot).filter_by(contact_id=cid, reason="seed")}
            assert after == before
            check_invariants(s, cid)
