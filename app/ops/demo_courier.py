"""``python -m app demo``: a simulated courier, so the demo's map moves.

It talks to a running server over its public REST API, as real producers do: places an order for
``customer_demo`` at ``store_demo`` (or takes ``--order``), pays it through the signed payment
webhook, moves it to OUT_FOR_DELIVERY as the store's vendor, posts a location and ETA every
``interval`` seconds along a route, then delivers it.
"""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
from rich.progress import Progress

from app.platform.auth import mint_token
from app.platform.settings import Settings
from app.services.senders import sign
from models.enums import Role

__all__ = ["drive_courier"]

START = (52.5200, 13.4050)  # a depot; the map draws relative positions only, no tiles are needed
ADDRESS = {"name": "Demo Customer", "line1": "1 Demo Street", "city": "Berlin", "postalCode": "10115", "country": "DE"}


def route(steps: int, seed: int) -> list[tuple[float, float]]:
    """A wandering street route of ``steps`` points from the depot."""
    rng = random.Random(seed)
    lat, lng = START
    heading = rng.uniform(0, 2 * math.pi)
    points = []
    for _ in range(steps):
        if rng.random() < 0.2:
            heading += rng.choice((-math.pi / 2, math.pi / 2))  # turn a corner
        lat += 0.0004 * math.sin(heading)
        lng += 0.0006 * math.cos(heading)
        points.append((round(lat, 6), round(lng, 6)))
    return points


async def _place_order(http: httpx.AsyncClient, customer: dict[str, str]) -> str:
    products = (await http.get("/stores/store_demo/products", headers=customer)).raise_for_status().json()
    items = products["items"] if isinstance(products, dict) else products
    body = {
        "storeId": "store_demo",
        "items": [{"productId": items[0]["id"], "quantity": 1}],
        "shippingAddress": ADDRESS,
    }
    order = (await http.post("/orders", json=body, headers=customer)).raise_for_status().json()
    return str(order["id"])


async def _pay(http: httpx.AsyncClient, settings: Settings, order: dict[str, object]) -> None:
    """The payment provider's signed webhook: the payment succeeded, which confirms the order."""
    event = {
        "id": f"evt_demo_{order['id']}",
        "type": "payment.succeeded",
        "data": {"orderId": order["id"], "amountCents": order["totalCents"], "currency": order["currency"]},
    }
    body = msgspec.json.encode(event)
    headers = {"Content-Type": "application/json", "X-Signature": sign(settings.webhook_secret, body)}
    (await http.post("/webhooks/payments", content=body, headers=headers)).raise_for_status()


async def drive_courier(
    settings: Settings, base_url: str, steps: int, interval: float, order_id: str | None = None
) -> str:
    """Drive one order to delivery; answers its id."""

    def bearer(user_id: str, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(settings, user_id, role, ttl_seconds=3600)}"}

    customer, vendor = bearer("customer_demo", Role.CUSTOMER), bearer("vendor_demo", Role.VENDOR)
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        order_id = order_id or await _place_order(http, customer)
        order = (await http.get(f"/orders/{order_id}", headers=vendor)).raise_for_status().json()
        if order["paymentStatus"] == "PENDING":
            await _pay(http, settings, order)
        current = (await http.get(f"/orders/{order_id}", headers=vendor)).raise_for_status().json()["status"]
        path = ["CONFIRMED", "PROCESSING", "SHIPPED", "OUT_FOR_DELIVERY"]
        for status in path[path.index(current) + 1 :] if current in path else path:
            await http.patch(f"/orders/{order_id}/status", json={"status": status}, headers=vendor)
        with Progress() as progress:
            task = progress.add_task(f"courier of {order_id}", total=steps)
            for number, (lat, lng) in enumerate(route(steps, seed=hash(order_id) & 0xFFFF)):
                eta = datetime.now(UTC) + timedelta(seconds=(steps - number) * interval + 60)
                body = {"lat": lat, "lng": lng, "estimatedDeliveryAt": eta.isoformat().replace("+00:00", "Z")}
                (await http.post(f"/orders/{order_id}/tracking", json=body, headers=vendor)).raise_for_status()
                progress.advance(task)
                await asyncio.sleep(interval)
        await http.patch(f"/orders/{order_id}/status", json={"status": "DELIVERED"}, headers=vendor)
    return order_id
