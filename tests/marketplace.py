"""Helpers of the order tests: a store with products, an order placed through the API, signed webhooks."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import httpx
import msgspec

from app.services.senders import sign
from tests.conftest import TEST_SECRET

Headers = Callable[..., dict[str, str]]

ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Springfield", "postalCode": "12345", "country": "US"}
_events = itertools.count(1)


async def open_store(
    client: httpx.AsyncClient, auth: Headers, vendor: str, prices: tuple[int, ...] = (1500, 2500)
) -> tuple[str, list[str]]:
    """A store of ``vendor`` with one product per price; answers the store id and product ids."""
    store = await client.post("/stores", json={"name": f"{vendor}'s"}, headers=auth(vendor, "vendor"))
    assert store.status_code == 201, store.text
    store_id = store.json()["id"]
    products = []
    for number, price in enumerate(prices):
        body = {"name": f"thing {number}", "category": "Books", "priceCents": price}
        created = await client.post(f"/stores/{store_id}/products", json=body, headers=auth(vendor, "vendor"))
        assert created.status_code == 201, created.text
        products.append(created.json()["id"])
    return store_id, products


async def place(
    client: httpx.AsyncClient, auth: Headers, customer: str, store_id: str, lines: list[tuple[str, int]]
) -> dict[str, Any]:
    """Place an order through the API; answers the order."""
    body = {
        "storeId": store_id,
        "items": [{"productId": product, "quantity": quantity} for product, quantity in lines],
        "shippingAddress": ADDRESS,
    }
    response = await client.post("/orders", json=body, headers=auth(customer))
    assert response.status_code == 201, response.text
    return dict(response.json())


def event_id() -> str:
    """A provider event id no other test uses."""
    return f"evt_{next(_events)}_{id(_events)}"


def signed(body: dict[str, Any], secret: str = TEST_SECRET, now: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers of a webhook delivery signed with ``secret``."""
    raw = msgspec.json.encode(body)
    return raw, {"X-Signature": sign(secret, raw, now), "Content-Type": "application/json"}


async def payment_event(
    client: httpx.AsyncClient, order: dict[str, Any], kind: str, event: str | None = None, **data: Any
) -> httpx.Response:
    """Deliver a signed ``payment.<kind>`` event for ``order``."""
    body = {
        "id": event or event_id(),
        "type": f"payment.{kind}",
        "data": {"orderId": order["id"], "amountCents": order["totalCents"], "currency": order["currency"], **data},
    }
    raw, headers = signed(body)
    return await client.post("/webhooks/payments", content=raw, headers=headers)
