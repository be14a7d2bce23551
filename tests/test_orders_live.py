"""From order to delivery on a real uvicorn server: every live event checked on real WebSocket clients."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
from litestar import Litestar
from websockets.asyncio.client import connect

from app.platform.settings import Settings
from tests.live import receive_json, serving
from tests.marketplace import ADDRESS, payment_event

Headers = Callable[..., dict[str, str]]


class Tab:
    """One socket: domain events (order.*, payment.*, tracking.*) in order, notification types on the side."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.notifications: list[str] = []

    async def send(self, **message: Any) -> dict[str, Any]:
        """Send one op and answer its reply (events queued before it are kept)."""
        await self.ws.send(msgspec.json.encode(message).decode())
        return await self._next(lambda m: m.get("op") != "event")

    async def events(self, count: int, within: float = 10.0) -> list[tuple[str, str, dict[str, Any]]]:
        """The next ``count`` domain events as ``(channel, type, data)``."""
        return [await self._next(lambda m: m.get("op") == "event", within) for _ in range(count)]  # type: ignore[misc]

    async def notified(self, count: int, within: float = 10.0) -> list[str]:
        """The types of the first ``count`` notification.created events, waiting for them to arrive."""

        async def wait() -> list[str]:
            while len(self.notifications) < count:
                message = await receive_json(self.ws, within)
                assert message.get("op") == "event" and message["type"].startswith("notification."), message
                if message["type"] == "notification.created":
                    self.notifications.append(message["data"]["type"])
            return self.notifications

        return await asyncio.wait_for(wait(), within)

    async def _next(self, wanted: Callable[[dict[str, Any]], bool], within: float = 10.0) -> Any:
        async def find() -> Any:
            while True:
                message = await receive_json(self.ws, within)
                if message.get("op") == "event" and message["type"].startswith("notification."):
                    if message["type"] == "notification.created":
                        self.notifications.append(message["data"]["type"])
                    continue
                assert wanted(message), f"unexpected {message}"
                if message.get("op") == "event":
                    return (message["channel"], message["type"], message["data"])
                return message

        return await asyncio.wait_for(find(), within)


async def test_order_to_delivery_every_event(app: Litestar, settings: Settings, auth: Headers) -> None:
    """Placed, paid, moved to DELIVERED and tracked: user:, store: and order: get exactly SPEC's events and data."""
    customer, vendor = "c_live", "v_live"
    async with serving(app, settings) as address, httpx.AsyncClient(base_url=f"http://{address}") as http:
        store = (await http.post("/stores", json={"name": "Live"}, headers=auth(vendor, "vendor"))).json()["id"]
        body = {"name": "Atlas", "category": "Books", "priceCents": 1200}
        product = (await http.post(f"/stores/{store}/products", json=body, headers=auth(vendor, "vendor"))).json()
        url = f"ws://{address}/ws"
        async with (
            connect(url, additional_headers=auth(customer)) as customer_ws,
            connect(url, additional_headers=auth(vendor, "vendor")) as vendor_ws,
        ):
            me, shop = Tab(customer_ws), Tab(vendor_ws)
            for tab in (me, shop):
                assert (await receive_json(tab.ws))["op"] == "welcome"
                assert (await receive_json(tab.ws))["op"] == "subscribed"
            assert (await shop.send(op="subscribe", channel=f"store:{store}"))["op"] == "subscribed"

            placed = await http.post(
                "/orders",
                json={
                    "storeId": store,
                    "items": [{"productId": product["id"], "quantity": 2}],
                    "shippingAddress": ADDRESS,
                },
                headers=auth(customer),
            )
            order = placed.json()
            oid = order["id"]
            assert (order["subtotalCents"], order["shippingCents"], order["totalCents"]) == (2400, 499, 2899)
            created = {
                "orderId": oid, "storeId": store, "customerId": customer, "status": "PENDING",
                "totalCents": 2899, "currency": "USD", "createdAt": order["createdAt"],
            }  # fmt: skip
            assert await me.events(1) == [(f"user:{customer}", "order.created", created)]
            assert await shop.events(1) == [(f"store:{store}", "order.created", created)]
            # Join the order channel, then replay its history from the start: order.created is there too.
            joined = await me.send(op="subscribe", channel=f"order:{oid}")
            epoch = joined["offset"].split(":")[0]
            replay = await me.send(op="subscribe", channel=f"order:{oid}", since=f"{epoch}:0")
            assert replay["replayed"] == 1
            assert await me.events(1) == [(f"order:{oid}", "order.created", created)]

            assert (await payment_event(http, order, "succeeded")).json()["outcome"] == "APPLIED"
            tracking = (await http.get(f"/customer/orders/{oid}/tracking", headers=auth(customer))).json()
            paid_at = tracking["timeline"][1]["at"]
            payment = {"orderId": oid, "paymentStatus": "SUCCEEDED", "amountCents": 2899, "currency": "USD"}
            confirmed = {"orderId": oid, "storeId": store, "fromStatus": "PENDING", "toStatus": "CONFIRMED"}
            got = await me.events(4)
            assert sorted(got, key=lambda e: e[0]) == [
                (f"order:{oid}", "payment.status_changed", {**payment, "at": paid_at}),
                (f"order:{oid}", "order.status_changed", {**confirmed, "at": paid_at}),
                (f"user:{customer}", "payment.status_changed", {**payment, "at": paid_at}),
                (f"user:{customer}", "order.status_changed", {**confirmed, "at": paid_at}),
            ]
            assert await shop.events(1) == [(f"store:{store}", "order.status_changed", {**confirmed, "at": paid_at})]

            path = ["CONFIRMED", "PROCESSING", "SHIPPED", "OUT_FOR_DELIVERY"]
            for source, target in zip(path, [*path[1:], "DELIVERED"], strict=True):
                if target == "DELIVERED":
                    ping = {"lat": 52.52, "lng": 13.405, "at": "2026-01-01T10:00:00Z"}
                    ping["estimatedDeliveryAt"] = "2026-01-01T10:30:00Z"
                    assert (
                        await http.post(f"/orders/{oid}/tracking", json=ping, headers=auth(vendor, "vendor"))
                    ).json()["current"]
                    at, eta = "2026-01-01T10:00:00.000Z", "2026-01-01T10:30:00.000Z"
                    location = {"orderId": oid, "lat": 52.52, "lng": 13.405, "at": at}
                    assert await me.events(2) == [
                        (f"order:{oid}", "tracking.location", location),
                        (f"order:{oid}", "tracking.eta", {"orderId": oid, "estimatedDeliveryAt": eta, "at": at}),
                    ]
                moved = await http.patch(
                    f"/orders/{oid}/status", json={"status": target}, headers=auth(vendor, "vendor")
                )
                assert moved.status_code == 200, moved.text
                change = {"orderId": oid, "storeId": store, "fromStatus": source, "toStatus": target}
                change["at"] = moved.json()["updatedAt"]
                got = await me.events(2)
                assert sorted(got) == [
                    (f"order:{oid}", "order.status_changed", change),
                    (f"user:{customer}", "order.status_changed", change),
                ]
                assert await shop.events(1) == [(f"store:{store}", "order.status_changed", change)]

            assert await me.notified(7) == [
                "ORDER_CREATED", "PAYMENT_SUCCEEDED", "ORDER_STATUS_UPDATED", "ORDER_STATUS_UPDATED",
                "ORDER_STATUS_UPDATED", "ORDER_STATUS_UPDATED", "ORDER_DELIVERED",
            ]  # fmt: skip
            assert await shop.notified(1) == ["ORDER_CREATED"]
            # A last round trip: nothing else (no tracking on user: or store:, no more bells) was queued.
            for tab in (me, shop):
                assert (await tab.send(op="ping", ref=1))["op"] == "pong"
            assert len(me.notifications) == 7 and len(shop.notifications) == 1
