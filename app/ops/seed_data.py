"""Deterministic generators of the demo data: the catalog and orders with their timelines (notifications
about those orders are in :mod:`app.ops.seed_notifications`).

Rows are tuples in the column order of :data:`COLUMNS`, with aware UTC datetimes and JSON as text,
so :mod:`app.ops.seeding` can hand them to either engine unchanged. Every chunk draws from its own
``random.Random`` seeded by ``"{seed}:{phase}:{chunk}"`` (string seeds hash the same in every
process), so a chunk's rows depend only on the seed and its position.
"""

from __future__ import annotations

import json
import math
import random
from array import array
from bisect import bisect
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from models.enums import OrderEventKind, OrderStatus, PaymentStatus, Role

__all__ = [
    "COLUMNS",
    "DAY",
    "DEMO_IDS",
    "PAYMENTS",
    "STATUSES",
    "Catalog",
    "OrderLedger",
    "Row",
    "Rows",
    "Scope",
    "at_utc",
    "build_catalog",
    "orders",
    "zipf_cum_weights",
]

Row = tuple[Any, ...]
Rows = dict[str, list[Row]]

COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("id", "role", "name", "email", "created_at", "updated_at"),
    "stores": ("id", "owner_id", "name", "created_at"),
    "products": ("id", "store_id", "name", "category", "price_cents", "currency", "created_at"),
    "orders": (
        *("id", "customer_id", "store_id", "status", "payment_status", "subtotal_cents", "shipping_cents"),
        *("total_cents", "currency", "shipping_address", "current_lat", "current_lng", "current_location_at"),
        *("estimated_delivery_at", "created_at", "updated_at"),
    ),
    "order_items": (
        *("id", "order_id", "product_id", "name", "category", "unit_price_cents", "quantity"),
        *("customer_id", "ordered_at"),
    ),
    # The id is a BIGSERIAL / AUTOINCREMENT: the database numbers events in insertion order.
    "order_events": (
        *("order_id", "kind", "from_status", "to_status", "lat", "lng", "estimated_delivery_at", "note"),
        *("actor_id", "created_at", "customer_id"),
    ),
    "payments": ("id", "order_id", "status", "amount_cents", "currency", "reason", "created_at", "updated_at"),
    "notifications": (
        *("id", "user_id", "type", "title", "message", "channels", "priority", "metadata", "is_read"),
        *("scheduled_for", "sent_at", "created_at", "updated_at", "seen_at", "read_at"),
    ),
}

DEMO_IDS = {"customer": "customer_demo", "vendor": "vendor_demo", "admin": "admin_demo", "store": "store_demo"}

CATEGORIES = {
    "Electronics": ("Headphones", "Charger", "Speaker", "Keyboard", "Webcam"),
    "Books": ("Novel", "Cookbook", "Atlas", "Biography", "Comic"),
    "Home & Kitchen": ("Kettle", "Skillet", "Knife Set", "Blender", "Lamp"),
    "Fashion": ("Jacket", "Sneakers", "Scarf", "Backpack", "Sunglasses"),
    "Beauty": ("Serum", "Lipstick", "Perfume", "Face Mask", "Shampoo"),
    "Sports": ("Yoga Mat", "Dumbbells", "Football", "Water Bottle", "Bike Light"),
    "Toys": ("Puzzle", "Building Blocks", "Plush Bear", "Board Game", "Kite"),
    "Grocery": ("Coffee Beans", "Olive Oil", "Green Tea", "Dark Chocolate", "Honey"),
    "Garden": ("Seed Kit", "Hose", "Planter", "Pruner", "Bird Feeder"),
    "Pets": ("Dog Bed", "Cat Tree", "Leash", "Aquarium", "Chew Toy"),
}
ADJECTIVES = ("Classic", "Eco", "Pro", "Mini", "Deluxe", "Smart", "Vintage", "Ultra", "Essential", "Premium")
FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Liam")
LAST_NAMES = ("Okafor", "Schmidt", "Garcia", "Nguyen", "Rossi", "Kowalski", "Silva", "Berg", "Tanaka", "Moreau")
STREETS = ("Main St", "Oak Ave", "Market St", "High St", "Station Rd", "Park Lane", "Mill Rd", "Lake Dr")
CITIES = (
    ("New York", "US", 40.71, -74.01),
    ("Chicago", "US", 41.88, -87.63),
    ("Austin", "US", 30.27, -97.74),
    ("Seattle", "US", 47.61, -122.33),
    ("Toronto", "CA", 43.65, -79.38),
    ("London", "GB", 51.51, -0.13),
    ("Manchester", "GB", 53.48, -2.24),
    ("Berlin", "DE", 52.52, 13.40),
    ("Paris", "FR", 48.86, 2.35),
    ("Madrid", "ES", 40.42, -3.70),
    ("Amsterdam", "NL", 52.37, 4.90),
    ("Milan", "IT", 45.46, 9.19),
    ("Stockholm", "SE", 59.33, 18.07),
    ("Sydney", "AU", -33.87, 151.21),
)
CURRENCIES = ("USD",) * 16 + ("EUR",) * 3 + ("GBP",)
DAY = 86_400.0
SPAN = 730 * DAY
# Shoppers buy more at lunch and in the evening, and more at the weekend (Monday first).
HOUR_CUM = list(accumulate((1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 11, 12, 11, 9, 8, 8, 9, 11, 13, 14, 12, 7, 3)))
WEEKDAY_WEIGHT = (0.85, 0.85, 0.9, 0.9, 1.0, 1.0, 0.95)
ITEM_CUM = list(accumulate((50, 25, 13, 8, 4)))
QUANTITY_CUM = list(accumulate((80, 15, 5)))
STATUSES = list(OrderStatus)
PAYMENTS = list(PaymentStatus)
S = OrderStatus
FORWARD = (S.CONFIRMED, S.PROCESSING, S.SHIPPED, S.OUT_FOR_DELIVERY, S.DELIVERED)
# Seconds each step takes after the previous one: payment, packing, hand-over, transit, last mile.
STEP_DELAY = ((120, 3600), (3600, DAY), (6 * 3600, 2 * DAY), (12 * 3600, 4 * DAY), (3600, 10 * 3600))
STEP_ACTOR = ("svc_payments", "vendor", "vendor", "svc_courier", "svc_courier")
CANCEL_SHARE, REFUND_SHARE = 0.06, 0.04


def at_utc(epoch: float) -> datetime:
    """A UNIX time as an aware UTC datetime."""
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class Scope:
    """What makes one run's data its own: the seed, the id tag derived from it, and the end of time."""

    seed: int
    tag: str
    until: datetime


@dataclass
class Catalog:
    """Everyone and everything orders draw from, with the weights that make the load realistic."""

    customer_ids: list[str]
    customer_cum: list[float]
    addresses: list[str]
    cities: list[int]
    store_ids: list[str]
    store_owners: list[str]
    store_names: list[str]
    store_currency: list[str]
    store_cum: list[float]
    products: list[list[tuple[str, str, str, int]]]
    rows: Rows
    demo_rows: Rows


@dataclass
class OrderLedger:
    """A few compact facts per order (about 12 bytes each), so notifications can refer to real orders."""

    customer: array[int] = field(default_factory=lambda: array("i"))
    store: array[int] = field(default_factory=lambda: array("i"))
    created: array[float] = field(default_factory=lambda: array("d"))
    status: array[int] = field(default_factory=lambda: array("b"))
    payment: array[int] = field(default_factory=lambda: array("b"))


def zipf_cum_weights(count: int, top_share: float) -> list[float]:
    """Cumulative weights ``k ** -s``, with ``s`` chosen so the first of ``count`` gets ``top_share`` of draws."""
    low, high = 0.0, 3.0
    for _ in range(30):
        middle = (low + high) / 2
        share = 1.0 / math.fsum(k**-middle for k in range(1, count + 1))
        low, high = (middle, high) if share < top_share else (low, middle)
    return list(accumulate(k**-high for k in range(1, count + 1)))


def _products(rng: random.Random, store_id: str, currency: str, created: datetime, rows: Rows) -> list[Any]:
    main = rng.sample(list(CATEGORIES), rng.choice((1, 1, 2, 3)))
    found = []
    for k in range(rng.randint(3, 20)):
        category = rng.choice(main)
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(CATEGORIES[category])}"
        # Log-uniform between $1.99 and $199.99, ending in 99 like shop prices do.
        price = max(199, min(19999, round(math.exp(rng.uniform(math.log(199), math.log(19999))), -2) - 1))
        product = (f"prd_{store_id.removeprefix('sto_')}_{k:02d}", name, category, price)
        rows["products"].append((product[0], store_id, name, category, price, currency, created))
        found.append(product)
    return found


def build_catalog(scope: Scope, customers: int, stores: int) -> Catalog:
    """Users, stores and products; the demo set goes into ``demo_rows``, inserted only where missing."""
    rng, tag = random.Random(f"{scope.seed}:catalog"), scope.tag
    start = scope.until - timedelta(seconds=SPAN + 90 * DAY)
    rows: Rows = {"users": [], "stores": [], "products": []}
    demo: Rows = {"users": [], "stores": [], "products": []}
    customer_ids = [f"cus_{tag}_{n:07d}" for n in range(customers)]
    # The demo customer is a regular (not the heaviest) shopper, the demo store the second biggest.
    customer_ids.insert(min(10, customers), DEMO_IDS["customer"])
    addresses, cities = [], []
    for customer_id in customer_ids:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        city = rng.randrange(len(CITIES))
        line1 = f"{rng.randint(1, 999)} {rng.choice(STREETS)}"
        name = f"{first} {last}"
        postal = f"{rng.randint(10000, 99999)}"
        town, country = CITIES[city][:2]
        address = {"name": name, "line1": line1, "city": town, "postalCode": postal, "country": country}
        addresses.append(json.dumps(address))
        cities.append(city)
        joined = start - timedelta(seconds=rng.uniform(0, 60 * DAY))
        email = f"{first}.{last}.{customer_id}@example.com".lower()
        target = demo if customer_id == DEMO_IDS["customer"] else rows
        target["users"].append((customer_id, Role.CUSTOMER.value, name, email, joined, joined))
    store_ids = [f"sto_{tag}_{n:06d}" for n in range(stores)]
    store_ids.insert(min(1, stores), DEMO_IDS["store"])
    owners, names, currencies, products = [], [], [], []
    for store_id in store_ids:
        is_demo = store_id == DEMO_IDS["store"]
        # The demo store looks the same whatever the seed, so a second seed finds it consistent.
        store_rng = random.Random("demo-store") if is_demo else rng
        owner = DEMO_IDS["vendor"] if is_demo else store_id.replace("sto_", "ven_")
        opened = start - timedelta(seconds=store_rng.uniform(0, 30 * DAY))
        currency = "USD" if is_demo else store_rng.choice(CURRENCIES)
        kind = store_rng.choice(("Shop", "Market", "Co.", "Outlet"))
        name = f"{store_rng.choice(LAST_NAMES)}'s {store_rng.choice(list(CATEGORIES))} {kind}"
        target = demo if is_demo else rows
        target["users"].append((owner, Role.VENDOR.value, f"{name} (owner)", f"{owner}@example.com", opened, opened))
        target["stores"].append((store_id, owner, name, opened))
        products.append(_products(store_rng, store_id, currency, opened, target))
        owners.append(owner)
        names.append(name)
        currencies.append(currency)
    demo["users"].append((DEMO_IDS["admin"], Role.ADMIN.value, "Demo Admin", "admin_demo@example.com", start, start))
    # Store sizes follow a Pareto law (80/20): a few big shops, a long tail of small ones.
    store_weights = sorted((rng.paretovariate(1.16) for _ in store_ids), reverse=True)
    return Catalog(
        customer_ids=customer_ids,
        customer_cum=zipf_cum_weights(len(customer_ids), max(0.012, min(1.0, 4 / len(customer_ids)))),
        addresses=addresses,
        cities=cities,
        store_ids=store_ids,
        store_owners=owners,
        store_names=names,
        store_currency=currencies,
        store_cum=list(accumulate(store_weights)),
        products=products,
        rows=rows,
        demo_rows=demo,
    )


def _order_times(rng: random.Random, count: int, window: tuple[float, float], until: float) -> list[float]:
    """Sorted creation times: denser lately (growth), with weekday and time-of-day patterns."""
    times: list[float] = []
    low, high = window
    while len(times) < count:
        # Age as a fraction of SPAN has density 2(1 - a): twice as many orders now as two years ago.
        t = until - SPAN * (1.0 - math.sqrt(rng.uniform(low, high)))
        day = math.floor(t / DAY) * DAY
        if rng.random() > WEEKDAY_WEIGHT[(int(day // DAY) + 3) % 7]:  # 1970-01-01 was a Thursday
            continue
        hour = bisect(HOUR_CUM, rng.random() * HOUR_CUM[-1])
        times.append(min(day + hour * 3600 + rng.random() * 3600, until - 1))
    times.sort()
    return times


def orders(catalog: Catalog, scope: Scope, first: int, count: int, total: int, ledger: OrderLedger) -> Rows:
    """Orders ``first .. first + count - 1`` of ``total``, with items, events and payments."""
    rng, tag = random.Random(f"{scope.seed}:orders:{first}"), scope.tag
    end = scope.until.timestamp()
    times = _order_times(rng, count, (first / total, (first + count) / total), end)
    customers = rng.choices(range(len(catalog.customer_ids)), cum_weights=catalog.customer_cum, k=count)
    stores = rng.choices(range(len(catalog.store_ids)), cum_weights=catalog.store_cum, k=count)
    out: Rows = {"orders": [], "order_items": [], "order_events": [], "payments": []}
    items, events = out["order_items"], out["order_events"]
    rand, uniform = rng.random, rng.uniform
    for i, created in enumerate(times):
        n, customer, store = first + i, customers[i], stores[i]
        order_id, customer_id, owner = f"ord_{tag}_{n:09d}", catalog.customer_ids[customer], catalog.store_owners[store]
        picks = rng.sample(
            catalog.products[store], min(bisect(ITEM_CUM, rand() * 100) + 1, len(catalog.products[store]))
        )
        subtotal, ordered_at = 0, at_utc(created)
        for j, (product_id, name, category, price) in enumerate(picks):
            quantity = bisect(QUANTITY_CUM, rand() * 100) + 1
            subtotal += price * quantity
            line = (product_id, name, category, price, quantity, customer_id, ordered_at)
            items.append((f"itm_{tag}_{n:09d}_{j}", order_id, *line))
        shipping = 0 if subtotal >= 5000 else (399, 499, 799)[int(rand() * 3)]
        # Plan the whole journey, then keep the steps that have happened by `until`.
        fate = rand()
        last = len(FORWARD) if fate >= CANCEL_SHARE else 0
        steps: list[tuple[OrderEventKind, S | None, S, float, str]] = [
            (OrderEventKind.CREATED, None, S.PENDING, created, customer_id)
        ]
        status, t = S.PENDING, created
        payment, paid_at, reason = PaymentStatus.PENDING, created, None
        planned = created
        for step in range(last):
            planned += uniform(*STEP_DELAY[step])
            if planned <= end:
                actor = owner if STEP_ACTOR[step] == "vendor" else STEP_ACTOR[step]
                steps.append((OrderEventKind.STATUS_CHANGED, status, FORWARD[step], planned, actor))
                status, t = FORWARD[step], planned
        if status != S.PENDING:
            payment, paid_at = PaymentStatus.SUCCEEDED, steps[1][3]
        elif fate < CANCEL_SHARE:
            if rand() < 0.6:  # the card was declined, then the customer gave up
                payment, paid_at, reason = PaymentStatus.FAILED, created + uniform(60, 600), "card_declined"
            cancel_at = created + uniform(900, 2 * DAY)
            if cancel_at <= end:
                steps.append((OrderEventKind.STATUS_CHANGED, status, S.CANCELLED, cancel_at, customer_id))
                status, t = S.CANCELLED, cancel_at
        elif rand() < 0.5:
            payment, paid_at = PaymentStatus.PROCESSING, created + uniform(5, 60)
        if status == S.DELIVERED and fate < CANCEL_SHARE + REFUND_SHARE:
            refund_at = t + uniform(DAY, 14 * DAY)
            if refund_at <= end:
                steps.append((OrderEventKind.STATUS_CHANGED, status, S.REFUNDED, refund_at, "svc_payments"))
                status, t, reason = S.REFUNDED, refund_at, "damaged"
                payment, paid_at = PaymentStatus.REFUNDED, refund_at
        lat: float | None = None
        lng: float | None = None
        located: datetime | None = None
        eta: datetime | None = None
        if len(steps) > 3 and status != S.CANCELLED:  # shipped: the courier has been seen
            city = CITIES[catalog.cities[customer]]
            lat, lng = city[2] + uniform(-0.2, 0.2), city[3] + uniform(-0.2, 0.2)
            eta = at_utc(planned)
            located = at_utc(t if status in (S.DELIVERED, S.REFUNDED) else (t + end) / 2)
        for kind, before, after, at, actor in steps:
            previous = None if before is None else before.value
            events.append(
                (order_id, kind.value, previous, after.value, None, None, None, None, actor, at_utc(at), customer_id)
            )
        if status in (S.SHIPPED, S.OUT_FOR_DELIVERY):
            location = OrderEventKind.LOCATION.value
            events.append((order_id, location, None, None, lat, lng, eta, None, "svc_courier", located, customer_id))
        head = (order_id, customer_id, catalog.store_ids[store], status.value, payment.value)
        money = (subtotal, shipping, subtotal + shipping, catalog.store_currency[store])
        tracking = (catalog.addresses[customer], lat, lng, located, eta, ordered_at, at_utc(max(t, paid_at)))
        out["orders"].append(head + money + tracking)
        if payment != PaymentStatus.PENDING:
            row = (f"pay_{tag}_{n:09d}", order_id, payment.value, *money[2:], reason, ordered_at, at_utc(paid_at))
            out["payments"].append(row)
        ledger.customer.append(customer)
        ledger.store.append(store)
        ledger.created.append(created)
        ledger.status.append(STATUSES.index(status))
        ledger.payment.append(PAYMENTS.index(payment))
    return out
