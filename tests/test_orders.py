"""Catalog and orders REST on both engines: pricing, validation, role scoping, pagination, implied notifications."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from models import Notification, Order, OrderEvent, OrderItem, OutboxEvent
from tests.marketplace import ADDRESS, open_store, payment_event, place

Headers = Callable[..., dict[str, str]]


async def test_order_is_priced_server_side(client: httpx.AsyncClient, auth: Headers) -> None:
    """Subtotal from product prices, 499 shipping under 5000 and free from 5000; PENDING, payment PENDING."""
    store, (cheap, dear) = await open_store(client, auth, "v_price", prices=(1000, 4000))
    small = await place(client, auth, "c_price", store, [(cheap, 2)])
    assert (small["subtotalCents"], small["shippingCents"], small["totalCents"]) == (2000, 499, 2499)
    assert (small["status"], small["paymentStatus"], small["currency"]) == ("PENDING", "PENDING", "USD")
    assert small["shippingAddress"] == ADDRESS and small["currentLocation"] is None
    big = await place(client, auth, "c_price", store, [(cheap, 1), (dear, 1)])
    assert (big["subtotalCents"], big["shippingCents"], big["totalCents"]) == (5000, 0, 5000)
    assert [(item["productId"], item["lineTotalCents"]) for item in big["items"]] == [(cheap, 1000), (dear, 4000)]


async def test_placing_writes_event_notifications_and_outbox(client: httpx.AsyncClient, auth: Headers) -> None:
    """One order: a CREATED event, ORDER_CREATED for customer (LOW) and vendor (MEDIUM), order.created x3."""
    store, (product, _) = await open_store(client, auth, "v_side")
    order = await place(client, auth, "c_side", store, [(product, 1)])
    events = await OrderEvent.select(OrderEvent.kind, OrderEvent.to_status).where(OrderEvent.order == order["id"])
    assert events == [{"kind": "CREATED", "to_status": "PENDING"}]
    bells = await Notification.select(Notification.user, Notification.type, Notification.priority).where(
        Notification.user.is_in(["c_side", "v_side"])
    )
    assert sorted((row["user_id"], row["type"], row["priority"]) for row in bells) == [
        ("c_side", "ORDER_CREATED", "LOW"),
        ("v_side", "ORDER_CREATED", "MEDIUM"),
    ]
    channels = await OutboxEvent.select(OutboxEvent.channel).where(OutboxEvent.type == "order.created")
    assert {"user:c_side", f"store:{store}", f"order:{order['id']}"} <= {row["channel"] for row in channels}


async def test_bad_orders_name_the_field(client: httpx.AsyncClient, auth: Headers) -> None:
    """Another store's product, an unknown store, quantity 0 or 101, no items: 4xx naming the field."""
    store, (mine, _) = await open_store(client, auth, "v_bad")
    _, (theirs, _) = await open_store(client, auth, "v_bad_other")

    async def attempt(store_id: str, items: list[dict[str, object]]) -> httpx.Response:
        body = {"storeId": store_id, "items": items, "shippingAddress": ADDRESS}
        return await client.post("/orders", json=body, headers=auth("c_bad"))

    foreign = await attempt(store, [{"productId": mine, "quantity": 1}, {"productId": theirs, "quantity": 1}])
    assert foreign.status_code == 422 and foreign.json()["errors"][0]["field"] == "items[1].productId"
    unknown = await attempt("sto_nope", [{"productId": mine, "quantity": 1}])
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "storeId"
    for quantity in (0, 101):
        response = await attempt(store, [{"productId": mine, "quantity": quantity}])
        assert response.status_code == 400 and "quantity" in response.json()["detail"]
    assert (await attempt(store, [])).status_code == 400
    listed = await client.get("/orders", headers=auth("c_bad"))
    assert listed.json()["items"] == []


async def test_role_scoping(client: httpx.AsyncClient, auth: Headers) -> None:
    """Another vendor or customer gets 404; roles that may never do a thing get 403."""
    store, (product, _) = await open_store(client, auth, "v_own")
    await open_store(client, auth, "v_rival")
    order = await place(client, auth, "c_own", store, [(product, 1)])
    path = f"/orders/{order['id']}"
    assert (await client.get(path, headers=auth("v_own", "vendor"))).status_code == 200
    assert (await client.get(path, headers=auth("admin_1", "admin"))).status_code == 200
    assert (await client.get(path, headers=auth("v_rival", "vendor"))).status_code == 404
    assert (await client.get(path, headers=auth("c_other"))).status_code == 404
    move = {"status": "CONFIRMED"}
    assert (await client.patch(f"{path}/status", json=move, headers=auth("v_rival", "vendor"))).status_code == 404
    ping = {"lat": 1, "lng": 2}
    assert (await client.post(f"{path}/tracking", json=ping, headers=auth("v_rival", "vendor"))).status_code == 404
    assert (await client.patch(f"{path}/status", json=move, headers=auth("c_own"))).status_code == 403
    assert (await client.post(f"{path}/tracking", json=ping, headers=auth("c_own"))).status_code == 403
    assert (await client.post(f"{path}/cancel", headers=auth("v_own", "vendor"))).status_code == 403
    assert (await client.get(path, headers=auth("svc", "service"))).status_code == 403
    assert (await client.post("/stores", json={"name": "x"}, headers=auth("c_own"))).status_code == 403
    body = {"name": "x", "category": "Books", "priceCents": 1}
    assert (
        await client.post(f"/stores/{store}/products", json=body, headers=auth("v_rival", "vendor"))
    ).status_code == 404
    assert (await client.patch(f"{path}/status", json=move, headers=auth("svc", "service"))).status_code == 200
    assert (await client.get("/orders", headers=auth("v_rival", "vendor"))).json()["items"] == []


async def test_list_pages_newest_first_and_filters(client: httpx.AsyncClient, auth: Headers) -> None:
    """Pages chain through nextCursor without gaps or repeats; admins filter by store, customer and status."""
    store, (product, _) = await open_store(client, auth, "v_pages")
    ids = [(await place(client, auth, "c_pages", store, [(product, 1)]))["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/orders", params=params, headers=auth("c_pages"))).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    vendor = (await client.get("/orders", params={"limit": 100}, headers=auth("v_pages", "vendor"))).json()
    assert [item["id"] for item in vendor["items"]] == list(reversed(ids))
    await client.post(f"/orders/{ids[0]}/cancel", headers=auth("c_pages"))
    admin = auth("admin_1", "admin")
    params = {"storeId": store, "customerId": "c_pages", "status": "CANCELLED"}
    filtered = (await client.get("/orders", params=params, headers=admin)).json()
    assert [item["id"] for item in filtered["items"]] == [ids[0]]
    assert (await client.get("/orders", params={"limit": 101}, headers=admin)).status_code == 400
    assert (await client.get("/orders", params={"cursor": "forged"}, headers=admin)).status_code == 400


async def test_items_and_events_carry_the_orders_customer(client: httpx.AsyncClient, auth: Headers) -> None:
    """Items and every event the API writes (placing, payment, status, tracking) carry the order's customer."""
    store, (book, pen) = await open_store(client, auth, "v_owner")
    order = await place(client, auth, "c_owner", store, [(book, 1), (pen, 2)])
    await place(client, auth, "c_owner_other", store, [(book, 1)])
    path = f"/orders/{order['id']}"
    assert (await payment_event(client, order, "succeeded")).status_code == 200
    moved = await client.patch(f"{path}/status", json={"status": "PROCESSING"}, headers=auth("v_owner", "vendor"))
    assert moved.status_code == 200, moved.text
    ping = {"lat": 1.5, "lng": 2.5, "estimatedDeliveryAt": "2030-01-01T00:00:00Z", "note": "at the depot"}
    pinged = await client.post(f"{path}/tracking", json=ping, headers=auth("v_owner", "vendor"))
    assert pinged.status_code in (200, 201), pinged.text
    created = await Order.select(Order.created_at).where(Order.id == order["id"]).first()
    assert created is not None
    items = await OrderItem.select(OrderItem.customer, OrderItem.ordered_at).where(OrderItem.order == order["id"])
    assert items == [{"customer_id": "c_owner", "ordered_at": created["created_at"]}] * 2
    events = await OrderEvent.select(OrderEvent.kind, OrderEvent.customer).where(OrderEvent.order == order["id"])
    assert {row["kind"] for row in events} == {"CREATED", "PAYMENT", "STATUS_CHANGED", "LOCATION", "ETA", "NOTE"}
    assert {row["customer_id"] for row in events} == {"c_owner"}


async def test_a_child_row_written_without_its_customer_gets_it(client: httpx.AsyncClient, auth: Headers) -> None:
    """An item or event inserted without customer_id (an older writer) is given the order's by the database."""
    store, (book, _) = await open_store(client, auth, "v_legacy")
    order = await place(client, auth, "c_legacy", store, [(book, 1)])
    await OrderEvent.insert(OrderEvent(order=order["id"], kind="NOTE", note="by hand"))
    await OrderItem.insert(
        OrderItem(
            id=f"itm_legacy_{order['id'][-20:]}",
            order=order["id"],
            product=book,
            name="b",
            category="Books",
            unit_price_cents=1,
            quantity=1,
        )
    )
    notes = await OrderEvent.select(OrderEvent.customer).where(
        (OrderEvent.order == order["id"]) & (OrderEvent.kind == "NOTE")
    )
    assert notes == [{"customer_id": "c_legacy"}]
    items = await OrderItem.select(OrderItem.customer, OrderItem.ordered_at).where(OrderItem.order == order["id"])
    created = await Order.select(Order.created_at).where(Order.id == order["id"]).first()
    assert created is not None
    assert items == [{"customer_id": "c_legacy", "ordered_at": created["created_at"]}] * 2
