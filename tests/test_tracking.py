"""Tracking pings and the customer's tracking view on both engines: latest wins, the log is thinned to 30 s."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
import pytest
from litestar import Litestar
from websockets.asyncio.client import connect

from app.platform.settings import Settings
from app.platform.timefmt import rfc3339
from app.runtime import Runtime
from channels import BrokerUnavailable
from models import Notification, Order, OrderEvent, OutboxEvent
from tests.live import receive_json, serving
from tests.marketplace import open_store, place

Headers = Callable[..., dict[str, str]]
BASE = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


async def _shipped_order(client: httpx.AsyncClient, auth: Headers, tag: str) -> str:
    store, (product, _) = await open_store(client, auth, f"v_{tag}")
    order = await place(client, auth, f"c_{tag}", store, [(product, 1)])
    await Order.update({Order.status: "SHIPPED"}).where(Order.id == order["id"])
    return str(order["id"])


def _ping(seconds: float, lat: float, **extra: object) -> dict[str, object]:
    return {"lat": lat, "lng": 10.0, "at": rfc3339(BASE + timedelta(seconds=seconds)), **extra}


async def test_older_ping_never_moves_the_location_back(
    app: Litestar, client: httpx.AsyncClient, auth: Headers
) -> None:
    """A ping measured before the current one is published but leaves the current location where it is."""
    order_id = await _shipped_order(client, auth, "late")
    headers = auth("v_late", "vendor")
    assert (await client.post(f"/orders/{order_id}/tracking", json=_ping(60, 1.0), headers=headers)).json()["current"]
    late = await client.post(f"/orders/{order_id}/tracking", json=_ping(10, 2.0), headers=headers)
    assert late.status_code == 200 and late.json()["current"] is False
    view = (await client.get(f"/customer/orders/{order_id}/tracking", headers=auth("c_late"))).json()
    assert view["currentLocation"] == {"lat": 1.0, "lng": 10.0, "at": rfc3339(BASE + timedelta(seconds=60))}
    # Pings are published directly (not through the outbox), into the channel's history.
    history = await app.state.runtime.relay.broker.history(f"order:{order_id}", None)
    published = [event for event in history.events if event.type == "tracking.location"]
    assert len(published) == 2


async def test_log_keeps_one_location_per_30_seconds(client: httpx.AsyncClient, auth: Headers) -> None:
    """Pings every 5 s for 2 minutes log one LOCATION per 30 s window; a late ping fills an empty window only."""
    order_id = await _shipped_order(client, auth, "thin")
    headers = auth("v_thin", "vendor")
    bells = await Notification.count()
    for second in range(0, 120, 5):
        response = await client.post(f"/orders/{order_id}/tracking", json=_ping(second, second / 10), headers=headers)
        assert response.status_code == 200
    await client.post(f"/orders/{order_id}/tracking", json=_ping(-20, 9.0), headers=headers)  # empty window
    await client.post(f"/orders/{order_id}/tracking", json=_ping(31, 9.0), headers=headers)  # window taken
    view = (await client.get(f"/customer/orders/{order_id}/tracking", headers=auth("c_thin"))).json()
    locations = [event for event in view["events"] if event["kind"] == "LOCATION"]
    assert [(event["createdAt"], event["lat"]) for event in locations] == [
        (rfc3339(BASE + timedelta(seconds=second)), lat)
        for second, lat in ((-20, 9.0), (0, 0.0), (30, 3.0), (60, 6.0), (90, 9.0))
    ]
    assert set(locations[0]) == {"id", "kind", "createdAt", "lat", "lng"}
    assert view["currentLocation"]["at"] == rfc3339(BASE + timedelta(seconds=115))
    assert await Notification.count() == bells  # pings never ring the bell


async def test_tracking_view_fields_and_timeline(client: httpx.AsyncClient, auth: Headers) -> None:
    """The view: status, payment, ETA, the log oldest first, the normal path's times; admins name the customer."""
    store, (product, _) = await open_store(client, auth, "v_view")
    order = await place(client, auth, "c_view", store, [(product, 1)])
    order_id = order["id"]
    vendor = auth("v_view", "vendor")
    for status in ("CONFIRMED", "PROCESSING", "SHIPPED"):
        await client.patch(f"/orders/{order_id}/status", json={"status": status}, headers=vendor)
    eta = rfc3339(BASE + timedelta(hours=1))
    await client.post(
        f"/orders/{order_id}/tracking",
        json={"lat": 5.0, "lng": 10.0, "estimatedDeliveryAt": eta, "note": "gate"},
        headers=vendor,
    )
    view = (await client.get(f"/customer/orders/{order_id}/tracking", headers=auth("c_view"))).json()
    assert (view["orderId"], view["status"], view["paymentStatus"]) == (order_id, "SHIPPED", "PENDING")
    assert view["estimatedDeliveryAt"] == eta
    kinds = [(event["kind"], event.get("toStatus")) for event in view["events"]]
    assert kinds[:4] == [
        ("CREATED", "PENDING"),
        ("STATUS_CHANGED", "CONFIRMED"),
        ("STATUS_CHANGED", "PROCESSING"),
        ("STATUS_CHANGED", "SHIPPED"),
    ]
    assert {kind for kind, _ in kinds[4:]} == {"LOCATION", "ETA", "NOTE"}
    timeline = view["timeline"]
    assert [step["status"] for step in timeline] == [
        "PENDING", "CONFIRMED", "PROCESSING", "SHIPPED", "OUT_FOR_DELIVERY", "DELIVERED",
    ]  # fmt: skip
    assert timeline[0]["at"] == order["createdAt"] and timeline[3]["at"] is not None and timeline[4]["at"] is None
    admin = auth("admin_1", "admin")
    path = f"/customer/orders/{order_id}/tracking"
    assert (await client.get(path, params={"customerId": "c_view"}, headers=admin)).json() == view
    assert (await client.get(path, headers=admin)).status_code == 400
    assert (await client.get(path, params={"customerId": "c_x"}, headers=admin)).status_code == 404
    assert (await client.get(path, headers=auth("c_x"))).status_code == 404
    assert (await client.get(path, headers=vendor)).status_code == 403


async def test_bad_pings_are_refused(client: httpx.AsyncClient, auth: Headers) -> None:
    """Out-of-range coordinates (400), a future `at` (422) and pings after delivery (409) change nothing."""
    order_id = await _shipped_order(client, auth, "badping")
    headers = auth("v_badping", "vendor")
    path = f"/orders/{order_id}/tracking"
    assert (await client.post(path, json={"lat": 91, "lng": 0}, headers=headers)).status_code == 400
    assert (await client.post(path, json={"lat": 0, "lng": -181}, headers=headers)).status_code == 400
    future = rfc3339(datetime.now(UTC) + timedelta(hours=1))
    assert (await client.post(path, json={"lat": 0, "lng": 0, "at": future}, headers=headers)).status_code == 422
    await Order.update({Order.status: "DELIVERED"}).where(Order.id == order_id)
    assert (await client.post(path, json={"lat": 0, "lng": 0}, headers=headers)).status_code == 409
    row = await Order.select(Order.current_location_at).where(Order.id == order_id).first()
    assert row is not None and row["current_location_at"] is None


async def test_a_ping_is_published_directly_to_subscribers(app: Litestar, settings: Settings, auth: Headers) -> None:
    """A ping reaches a WebSocket subscriber of its order channel without an outbox row."""
    async with serving(app, settings) as address, httpx.AsyncClient(base_url=f"http://{address}") as http:
        order_id = await _shipped_order(http, auth, "direct")
        async with connect(f"ws://{address}/ws", additional_headers=auth("c_direct")) as ws:
            assert (await receive_json(ws))["op"] == "welcome"
            assert (await receive_json(ws))["op"] == "subscribed"
            await ws.send(msgspec.json.encode({"op": "subscribe", "channel": f"order:{order_id}"}).decode())
            assert (await receive_json(ws))["op"] == "subscribed"
            ping = _ping(0, 4.5, estimatedDeliveryAt=rfc3339(BASE + timedelta(hours=1)))
            answer = await http.post(f"/orders/{order_id}/tracking", json=ping, headers=auth("v_direct", "vendor"))
            assert answer.json() == {"orderId": order_id, "current": True}
            at = rfc3339(BASE)
            location = await receive_json(ws)
            assert (location["type"], location["data"]) == (
                "tracking.location",
                {"orderId": order_id, "lat": 4.5, "lng": 10.0, "at": at},
            )
            assert (await receive_json(ws))["type"] == "tracking.eta"
    tracking_rows = await OutboxEvent.count().where(OutboxEvent.type.like("tracking.%"))
    assert tracking_rows == 0


async def test_concurrent_out_of_order_pings_keep_the_newest(client: httpx.AsyncClient, auth: Headers) -> None:
    """Pings of one order posted at once, in shuffled order: the newest is current and each window logs once."""
    order_id = await _shipped_order(client, auth, "race")
    headers = auth("v_race", "vendor")
    seconds = list(range(0, 120, 4))
    random.Random(7).shuffle(seconds)
    answers = await asyncio.wait_for(
        asyncio.gather(
            *(
                client.post(f"/orders/{order_id}/tracking", json=_ping(second, second / 10), headers=headers)
                for second in seconds
            )
        ),
        30,
    )
    assert all(answer.status_code == 200 for answer in answers)
    view = (await client.get(f"/customer/orders/{order_id}/tracking", headers=auth("c_race"))).json()
    assert view["currentLocation"] == {"lat": 11.6, "lng": 10.0, "at": rfc3339(BASE + timedelta(seconds=116))}
    logged = await OrderEvent.select(OrderEvent.created_at).where(
        (OrderEvent.order == order_id) & (OrderEvent.kind == "LOCATION")
    )
    windows = sorted(int((row["created_at"] - BASE).total_seconds()) // 30 for row in logged)
    assert windows == [0, 1, 2, 3]


async def test_a_ping_while_the_broker_fails_is_recorded(
    app: Litestar, client: httpx.AsyncClient, auth: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the broker raising, a ping still answers 200 and becomes current; the failure is counted."""
    order_id = await _shipped_order(client, auth, "nobroker")
    runtime: Runtime = app.state.runtime

    async def unavailable(*_args: object, **_kwargs: object) -> None:
        raise BrokerUnavailable("Redis unavailable: test")

    monkeypatch.setattr(runtime.relay.broker, "publish", unavailable)
    ping = _ping(0, 7.0, estimatedDeliveryAt=rfc3339(BASE + timedelta(hours=1)))
    answer = await client.post(f"/orders/{order_id}/tracking", json=ping, headers=auth("v_nobroker", "vendor"))
    assert answer.status_code == 200 and answer.json()["current"] is True
    view = (await client.get(f"/customer/orders/{order_id}/tracking", headers=auth("c_nobroker"))).json()
    assert view["currentLocation"] == {"lat": 7.0, "lng": 10.0, "at": rfc3339(BASE)}
    assert {event["kind"] for event in view["events"]} >= {"LOCATION", "ETA"}
    assert runtime.pings.publish_failures == 2  # tracking.location and tracking.eta
    metrics = (await client.get("/metrics")).text
    assert "push_tracking_publish_failures_total 2.0" in metrics
