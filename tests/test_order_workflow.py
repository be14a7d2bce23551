"""The order state machine: docs match the table, every refused move is a 409 with the right `allowed`,
cancellation windows, and two concurrent moves never both apply from one status."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.services.order_workflow import SET_BY, TRANSITIONS, Actor, allowed_next, markdown_table
from models import Order, OrderEvent
from models.enums import OrderStatus
from tests.marketplace import open_store, place

Headers = Callable[..., dict[str, str]]
DOC = Path(__file__).resolve().parent.parent / "docs" / "orders.md"

REFUSED = [
    (source, target)
    for source in OrderStatus
    for target in OrderStatus
    if not (target in TRANSITIONS[source] and Actor.STAFF in SET_BY[target])
]


def test_docs_render_the_table() -> None:
    """docs/orders.md shows exactly the transition table the code enforces."""
    text = DOC.read_text()
    found = re.search(r"<!-- transitions:start -->\n(.*?)\n<!-- transitions:end -->", text, re.S)
    assert found is not None and found.group(1) == markdown_table()


def test_refunded_is_set_only_by_payment() -> None:
    """No staff or customer path leads into REFUNDED, and PENDING is never a target."""
    assert SET_BY[OrderStatus.REFUNDED] == {Actor.PAYMENT}
    assert all(OrderStatus.PENDING not in following for following in TRANSITIONS.values())


async def _order_in(client: httpx.AsyncClient, auth: Headers, status: OrderStatus, tag: str) -> str:
    store, products = await open_store(client, auth, f"v_{tag}", prices=(1000,))
    order = await place(client, auth, f"c_{tag}", store, [(products[0], 1)])
    await Order.update({Order.status: status.value}).where(Order.id == order["id"])
    return str(order["id"])


@pytest.mark.parametrize(("source", "target"), REFUSED, ids=[f"{s.value}->{t.value}" for s, t in REFUSED])
async def test_refused_patch_is_409_with_allowed(
    client: httpx.AsyncClient, auth: Headers, source: OrderStatus, target: OrderStatus
) -> None:
    """A PATCH the table refuses answers 409 problem+json listing the staff's options, and changes nothing."""
    tag = f"{source.value}_{target.value}".lower()
    order_id = await _order_in(client, auth, source, tag)
    events = await OrderEvent.count().where(OrderEvent.order == order_id)
    response = await client.patch(
        f"/orders/{order_id}/status", json={"status": target.value}, headers=auth(f"v_{tag}", "vendor")
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["allowed"] == [status.value for status in allowed_next(source, Actor.STAFF)]
    row = await Order.select(Order.status).where(Order.id == order_id).first()
    assert row is not None and row["status"] == source.value
    assert await OrderEvent.count().where(OrderEvent.order == order_id) == events


@pytest.mark.parametrize("source", list(OrderStatus))
async def test_cancellation_window(client: httpx.AsyncClient, auth: Headers, source: OrderStatus) -> None:
    """The customer cancels while PENDING, CONFIRMED or PROCESSING; later it is a 409 with allowed []."""
    tag = f"cancel_{source.value}".lower()
    order_id = await _order_in(client, auth, source, tag)
    response = await client.post(f"/orders/{order_id}/cancel", headers=auth(f"c_{tag}"))
    if source in (OrderStatus.PENDING, OrderStatus.CONFIRMED, OrderStatus.PROCESSING):
        assert response.status_code == 200 and response.json()["status"] == "CANCELLED"
        kinds = await OrderEvent.select(OrderEvent.from_status, OrderEvent.to_status).where(
            (OrderEvent.order == order_id) & (OrderEvent.kind == "STATUS_CHANGED")
        )
        assert kinds == [{"from_status": source.value, "to_status": "CANCELLED"}]
    else:
        assert response.status_code == 409 and response.json()["allowed"] == []
    other = await client.post(f"/orders/{order_id}/cancel", headers=auth("c_someone_else"))
    assert other.status_code == 404


async def test_concurrent_moves_apply_once(client: httpx.AsyncClient, auth: Headers) -> None:
    """Four concurrent PATCHes CONFIRMED -> PROCESSING: exactly one applies, the others are 409s."""
    order_id = await _order_in(client, auth, OrderStatus.CONFIRMED, "race")
    headers = auth("v_race", "vendor")
    responses = await asyncio.wait_for(
        asyncio.gather(
            *(
                client.patch(f"/orders/{order_id}/status", json={"status": "PROCESSING"}, headers=headers)
                for _ in range(4)
            )
        ),
        30,
    )
    assert sorted(response.status_code for response in responses) == [200, 409, 409, 409]
    moves = await OrderEvent.select(OrderEvent.from_status).where(
        (OrderEvent.order == order_id) & (OrderEvent.kind == "STATUS_CHANGED")
    )
    assert moves == [{"from_status": "CONFIRMED"}]
