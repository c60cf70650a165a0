"""Checkout for tills and shops: quote → redeem → confirm | cancel, and refund.

- ``POST /api/v1/checkout/quote``: a dry run; every discount and points effect, and
  in ``rejected`` why a code or the points did not apply. Changes nothing.
- ``POST /api/v1/checkout/redeem``: reserves exactly what the quote gives, or fails
  (409) changing nothing. ``idempotency_key`` required; a repeat returns the first answer.
- ``POST /api/v1/checkout/confirm`` ``{"reservation"}``: paid; earns the order's points.
- ``POST /api/v1/checkout/cancel`` ``{"reservation"}``: not paid; everything goes back.
- ``POST /api/v1/checkout/refund`` ``{"reservation", "idempotency_key", "amount"?}``.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import psycopg
from litestar import post
from litestar.exceptions import HTTPException
from sqlalchemy.exc import OperationalError

from kaskad.api.auth import role_opt
from kaskad.api.threads import checkout_threads
from kaskad.loyalty import checkout
from kaskad.loyalty.ledger import LoyaltyError
from kaskad.runtime import Runtime
from kaskad.store.engine import core_reads, core_transaction, reads, transaction


def run(runtime: Runtime, fn, *args, read_only: bool = False, core: bool = False, engine: bool = False) -> dict[str, Any]:
    """One transaction (``read_only``: statements each on their own); a loyalty refusal
    becomes an HTTP error naming the reason. A deadlock or serialization failure is
    retried (the work is idempotent). ``core``: ``fn`` gets a Core connection, not a Session;
    ``engine``: the engine, to open its own."""
    if engine:
        db = functools.partial(contextlib.nullcontext, runtime.engine)
    elif core:
        db = functools.partial(core_reads if read_only else core_transaction, runtime.engine)
    else:
        db = functools.partial(reads if read_only else transaction, runtime.sessions)
    for attempt in range(5):
        try:
            with db() as session:
                return fn(session, *args)
        except LoyaltyError as exc:
            raise HTTPException(status_code=exc.status, detail=str(exc), extra={"code": exc.code}) from exc
        except (OperationalError, psycopg.OperationalError) as exc:  # the checkout's own statements are psycopg's
            if attempt == 4 or getattr(getattr(exc, "orig", exc), "sqlstate", None) not in ("40P01", "40001"):
                raise
    raise AssertionError("unreachable")


_post = functools.partial(post, opt=role_opt("integrator"), status_code=200, tags=["checkout"])
_thread = checkout_threads.run  # async handlers: their blocking work hops to a thread cheaper than sync_to_thread


@_post("/checkout/quote")
async def quote(runtime: Runtime, data: checkout.Cart) -> dict[str, Any]:
    """What this cart would get: discounts, points spent and earned, gift cards, and what did not apply."""
    return await _thread(run, runtime, checkout.quote, data, read_only=True, core=True)  # a dry run: nothing to commit


@_post("/checkout/redeem")
async def redeem(runtime: Runtime, data: checkout.Redeem) -> dict[str, Any]:
    """Reserve the quote's discounts, points and gift-card money under ``idempotency_key``."""
    return await _thread(run, runtime, checkout.redeem_now, data, engine=True)


@_post("/checkout/confirm")
async def confirm(runtime: Runtime, data: checkout.Confirm) -> dict[str, Any]:
    """The order was paid: code uses become final, the order's points are earned."""
    return await _thread(run, runtime, checkout.confirm, data.reservation)


@_post("/checkout/cancel")
async def cancel(runtime: Runtime, data: checkout.Confirm) -> dict[str, Any]:
    """The order was not paid: points, code uses and gift-card money go back."""
    return await _thread(run, runtime, checkout.cancel, data.reservation)


@_post("/checkout/refund")
async def refund(runtime: Runtime, data: checkout.Refund) -> dict[str, Any]:
    """Refund all or part of a confirmed order, reversing what it earned and spent in proportion."""
    return await _thread(run, runtime, checkout.refund, data)


routes = [quote, redeem, confirm, cancel, refund]
