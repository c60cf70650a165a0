"""Demo data for ``kaskad serve --demo`` (``make run DEMO=1``).

A small restaurant-and-delivery business: a few hundred guests with names,
emails, phones, timezones, birthdays and consents; a year of orders in RUB
with categories; recent events; and every journey in ``flows/`` that is valid
with the installed plugins, imported and published. Deterministic (a fixed
seed) and idempotent: loading twice changes nothing.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from kaskad import clock
from kaskad.ingest.contacts import ConsentIn, ContactIn, upsert_contacts
from kaskad.ingest.events import EventIn, store_events
from kaskad.ingest.orders import ItemIn, OrderIn, store_orders
from kaskad.store.engine import transaction

log = logging.getLogger(__name__)

FLOWS_DIR = Path(__file__).resolve().parents[2] / "flows"
FIRST = ["Anna", "Ivan", "Maria", "Dmitry", "Olga", "Sergey", "Elena", "Alexey", "Natalia", "Pavel", "Irina", "Nikolai"]
LAST = ["Ivanova", "Petrov", "Smirnova", "Kuznetsov", "Popova", "Sokolov", "Lebedeva", "Kozlov", "Novikova", "Morozov"]
ZONES = ["Europe/Moscow", "Europe/Moscow", "Europe/Moscow", "Asia/Yekaterinburg", "Asia/Novosibirsk", "Europe/Kaliningrad"]
MENU = [
    ("pizza-margherita", "Margherita", "pizza", "590"),
    ("pizza-pepperoni", "Pepperoni", "pizza", "690"),
    ("roll-philadelphia", "Philadelphia roll", "sushi", "520"),
    ("wok-chicken", "Chicken wok", "wok", "450"),
    ("tiramisu", "Tiramisu", "desserts", "320"),
    ("lemonade", "Lemonade", "drinks", "250"),
    ("coffee", "Cappuccino", "drinks", "190"),
]


def demo_contacts(n: int = 300, seed: int = 42) -> tuple[list[ContactIn], list[OrderIn], list[EventIn]]:
    rng = random.Random(seed)
    now = clock.now().replace(microsecond=0)
    contacts, orders, events = [], [], []
    for i in range(n):
        ext = f"demo-{i:04d}"
        first, last = rng.choice(FIRST), rng.choice(LAST)
        birthday = f"{rng.randint(1965, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        contacts.append(
            ContactIn(
                external_id=ext,
                email=f"{first.lower()}.{last.lower()}{i}@example.com",
                phone=f"+7916{rng.randint(1000000, 9999999)}",
                timezone=rng.choice(ZONES),
                attributes={"first_name": first, "last_name": last, "birthday": birthday},
                tags=["demo"],
                consents=[
                    ConsentIn(channel="email", status="granted", source="demo"),
                    ConsentIn(channel="sms", status="granted" if rng.random() < 0.6 else "revoked", source="demo"),
                    ConsentIn(channel="whatsapp", status="granted" if rng.random() < 0.4 else "revoked", source="demo"),
                ],
            )
        )
        # Regulars, occasional guests and sleepers: a realistic spread for RFM.
        visits = rng.choice([0, 1, 1, 2, 3, 5, 8, 12, 20])
        last_seen = rng.choice([3, 10, 30, 75, 120, 200, 300])
        for v in range(visits):
            placed = now - timedelta(days=last_seen + v * rng.randint(5, 25), hours=rng.randint(0, 12))
            lines = rng.sample(MENU, rng.randint(1, 4))
            items = [ItemIn(sku=s, name=nm, category=c, quantity=Decimal(rng.randint(1, 3)), price=Decimal(p)) for s, nm, c, p in lines]
            orders.append(
                OrderIn(id=f"{ext}-o{v}", contact=ext, status="paid", currency="RUB", placed_at=placed, items=items)
            )
        if rng.random() < 0.2:
            events.append(
                EventIn(contact=ext, name="cart_updated", id=f"{ext}-cart", time=now - timedelta(hours=rng.randint(1, 30)),
                        properties={"cart_id": f"{ext}-cart", "total": 1280})
            )
    return contacts, orders, events


def load_demo(runtime) -> dict[str, int]:
    """Load the demo data and publish the valid example flows. Returns counts."""
    contacts, orders, events = demo_contacts()
    with transaction(runtime.sessions) as session:
        created, _, errors = upsert_contacts(session, list(enumerate(contacts)))
        o_created, _, o_errors = store_orders(session, list(enumerate(orders)))
        e_stored, _, e_errors = store_events(session, list(enumerate(events)))
    for problem in errors + o_errors + e_errors:
        log.warning("demo item %s rejected: %s %s", problem.index, problem.field, problem.message)
    published = 0
    from kaskad.flow import service
    from kaskad.flow.validate import validate

    for path in sorted(FLOWS_DIR.glob("*.json")) if FLOWS_DIR.is_dir() else []:
        document = path.read_bytes()
        flow, problems = validate(document, runtime.registry)
        if problems:
            # The service would keep an invalid draft (the editor's autosave needs that); the demo should not.
            reasons = "; ".join(f"{e.node or '-'}: {e.message}" for e in problems[:3])
            log.info("demo: %s not loaded with the installed plugins (%s)", path.name, reasons)
            continue
        with transaction(runtime.sessions) as session:
            result = service.save(session, runtime.registry, document, author="demo")
            if result.status != "published":
                service.publish(session, runtime.registry, result.key, author="demo")
        published += 1
    counts = {"contacts": created, "orders": o_created, "events": e_stored, "flows": published}
    log.info("demo data loaded: %s", counts)
    return counts
