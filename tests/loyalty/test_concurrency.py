"""Against a real PostgreSQL: each thread its own connection, all released at once."""

import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.pool import NullPool

from kaskad import clock
from kaskad.loyalty import checkout, codes, ledger
from kaskad.loyalty.ledger import LoyaltyError
from kaskad.loyalty.models import CodeUse, Reservation
from kaskad.store.engine import make_engine, make_sessionmaker, transaction

from .helpers import check_invariants, contact

pytestmark = pytest.mark.postgres
CART = [{"sku": "A", "price": "10", "quantity": 3}, {"sku": "B", "price": "5", "quantity": 1}]


def parallel(n, fn):
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        try:
            results[i] = ("ok", fn(i))
        except LoyaltyError as exc:
            results[i] = ("refused", exc.code)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.fixture
def pg(pg_url):
    engine = make_engine(pg_url, poolclass=NullPool)  # a new connection per transaction: truly parallel
    yield make_sessionmaker(engine)
    engine.dispose()


def test_fifty_redeemers_on_a_code_limited_to_ten(pg):
    for i in range(50):
        contact(pg, f"c{i}")
    with transaction(pg) as s:
        codes.issue(s, code="TEN-USES", kind="promo", percent=Decimal(10), max_uses=10, valid_until=None)

    def redeem(i):
        with transaction(pg) as s:
            return checkout.redeem(s, checkout.Redeem(items=[checkout.CartItem(sku="A", price=Decimal(20))],
                                                      contact=f"c{i}", codes=["TEN-USES"], idempotency_key=f"k{i}"))

    results = parallel(50, redeem)
    assert sum(r[0] == "ok" for r in results) == 10
    assert {r[1] for r in results if r[0] == "refused"} == {"not_redeemable"}
    with transaction(pg) as s:
        code = codes.find(s, "TEN-USES")
        assert code.uses == 10
        assert s.scalar(select(func.count()).select_from(CodeUse).where(CodeUse.code_id == code.id)) == 10


@pytest.mark.parametrize("path", ["locked", "optimistic"])
def test_parallel_spends_of_one_balance_never_go_below_zero(pg, path):
    cid = contact(pg, "rich")
    with transaction(pg) as s:
        ledger.earn(s, cid, 60, "a", "a")
        ledger.earn(s, cid, 40, "b", "b")

    def spend(i):
        if i % 2:
            with transaction(pg) as s:  # the ledger's own spend writes the lots' new values outright
                return ledger.spend(s, cid, 7, f"s{i}", "parallel")
        return _redeem(pg, path, items=[checkout.CartItem(sku="A", price=Decimal(100))], contact="rich",
                       points=Decimal(7), idempotency_key=f"r{i}")

    results = parallel(30, spend)
    assert sum(r[0] == "ok" for r in results) == 14  # 14 × 7 = 98 of 100
    with transaction(pg) as s:
        assert check_invariants(s, cid) == 2


def test_one_idempotency_key_many_callers_one_effect(pg):
    cid = contact(pg, "same")
    with transaction(pg) as s:
        ledger.earn(s, cid, 50, "seed", "seed")
        codes.issue(s, code="MANY", kind="promo", percent=Decimal(5), max_uses=None, valid_until=None)

    def redeem(i):
        with transaction(pg) as s:
            return checkout.redeem(s, checkout.Redeem(items=[checkout.CartItem(sku="A", price=Decimal(40))], contact="same",
                                                      codes=["MANY"], points=Decimal(10), idempotency_key="one"))

    results = parallel(20, redeem)
    assert all(r[0] == "ok" for r in results)
    assert len({r[1]["reservation"] for r in results}) == 1
    anonymous = parallel(10, lambda i: _anon(pg))  # no contact: the unique key decides
    assert len({r[1]["reservation"] for r in anonymous}) == 1
    with transaction(pg) as s:
        assert check_invariants(s, cid) == 40
        many = codes.find(s, "MANY")  # unlimited: counted by its use rows, the code row is not a hot spot
        assert s.scalar(select(func.count()).select_from(CodeUse).where(CodeUse.code_id == many.id)) == 2
        assert s.scalar(select(func.count()).select_from(Reservation)) == 2


def _anon(pg):
    with transaction(pg) as s:
        return checkout.redeem(s, checkout.Redeem(items=[checkout.CartItem(sku="A", price=Decimal(40))],
                                                  codes=["MANY"], idempotency_key="anon"))


# The API runs checkout.redeem_now: on PostgreSQL an optimistic redeem outside a transaction
# (reads without locks, one write that locks and checks what it takes from), the locked
# redeem when that cannot answer. The same guarantees, with the ledger's locked spends mixed in.


def _redeem(pg, path: str, **cart):
    """``path`` "optimistic": as the API redeems (checkout.redeem_now); "locked": checkout.redeem
    in a transaction of the caller's."""
    items = cart.pop("items", [checkout.CartItem(sku="A", price=Decimal(20))])
    req = checkout.Redeem(items=items, **cart)
    if path == "optimistic":
        return checkout.redeem_now(pg.kw["bind"], req)
    with transaction(pg) as s:
        return checkout.redeem(s, req)


def test_fifty_optimistic_redeemers_on_a_code_limited_to_ten(pg):
    for i in range(50):
        contact(pg, f"o{i}")
    with transaction(pg) as s:
        codes.issue(s, code="TEN-FAST", kind="promo", percent=Decimal(10), max_uses=10, valid_until=None)
        codes.issue(s, code="GIFT-FAST", kind="gift_card", balance=Decimal(50), valid_until=None)

    results = parallel(50, lambda i: _redeem(pg, "optimistic", contact=f"o{i}", codes=["TEN-FAST"], idempotency_key=f"k{i}"))
    assert sum(r[0] == "ok" for r in results) == 10
    assert {r[1] for r in results if r[0] == "refused"} == {"not_redeemable"}
    # a gift card of 50 paying up to 20 a time: never below zero, every payment a use row
    results = parallel(20, lambda i: _redeem(pg, "optimistic", contact=f"o{i}", codes=["GIFT-FAST"], idempotency_key=f"g{i}"))
    paid = [Decimal(r[1]["gift_cards"][0]["amount"]) for r in results if r[0] == "ok"]
    with transaction(pg) as s:
        code = codes.find(s, "TEN-FAST")
        assert code.uses == 10
        assert s.scalar(select(func.count()).select_from(CodeUse).where(CodeUse.code_id == code.id)) == 10
        gift = codes.find(s, "GIFT-FAST")
        assert gift.balance >= 0 and gift.balance == Decimal(50) - sum(paid)
        assert s.scalar(select(func.count()).select_from(CodeUse).where(CodeUse.code_id == gift.id)) == len(paid)


@pytest.mark.parametrize("path", ["locked", "optimistic"])
def test_one_key_on_a_single_use_code_every_caller_gets_the_first_answer(pg, path):
    # Locked, the callers queue on the account lock; optimistic, all but one find the key
    # written. Those that then find the code used up must still answer with the first
    # call's reservation, not with a refusal.
    cid = contact(pg, "once")
    with transaction(pg) as s:
        ledger.earn(s, cid, 50, "seed", "seed")
        codes.issue(s, code="ONE-USE", kind="promo", percent=Decimal(20), max_uses=1, valid_until=None)

    results = parallel(20, lambda i: _redeem(pg, path, items=[checkout.CartItem(sku="A", price=Decimal(50))],
                                             contact="once", codes=["ONE-USE"], points=Decimal(10),
                                             idempotency_key="till:1"))
    assert [r[0] for r in results] == ["ok"] * 20
    assert len({r[1]["reservation"] for r in results}) == 1
    assert {r[1]["discounts"][0]["amount"] for r in results} == {"10.00"}
    with transaction(pg) as s:
        assert check_invariants(s, cid) == 40
        assert codes.find(s, "ONE-USE").uses == 1
        assert s.scalar(select(func.count()).select_from(Reservation)) == 1


def test_a_checked_write_writes_nothing_when_a_lot_or_code_changed_since_it_was_read(pg):
    from kaskad.loyalty import checkout_store
    from kaskad.loyalty.models import PointLot
    from kaskad.store.engine import core_reads

    cid = contact(pg, "stale")
    with transaction(pg) as s:
        ledger.earn(s, cid, 30, "seed", "seed")
        code = codes.issue(s, code="TWO-USES", kind="promo", percent=Decimal(10), max_uses=2, valid_until=None)
        s.flush()
        code_id = code.id
        lot = s.scalar(select(PointLot.id).where(PointLot.contact_id == cid))
    now = clock.now()

    def write(key, remaining, uses):
        with core_reads(pg.kw["bind"]) as conn:
            return checkout_store.write_redeem(conn, {
                "key": key, "op_key": f"redeem:{key}", "contact_id": cid, "order_ref": None, "quote": {},
                "result": {}, "net": Decimal(10), "points_spent": Decimal(5), "reason": "test", "now": now,
                "spends": [{"lot": lot, "part": Decimal(5)}], "uses": [{"code_id": code_id, "amount": Decimal(1)}],
                "counted": [{"code_id": code_id, "taken": Decimal(0), "uses": uses, "balance": None}],
                "remaining": {lot: remaining}})

    assert write("stale-lot", Decimal(29), 0) is None  # the lot holds 30, not 29
    assert write("stale-code", Decimal(30), 1) is None  # the code has 0 uses, not 1
    assert write("fresh", Decimal(30), 0) is not None
    with transaction(pg) as s:
        assert check_invariants(s, cid) == 25
        assert codes.find(s, "TWO-USES").uses == 1
        assert s.scalar(select(func.count()).select_from(Reservation)) == 1
