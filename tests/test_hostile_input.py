"""Input a fuzzer or a buggy client sends is a 4xx naming what is wrong, never a 5xx, on both engines."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from app.services.senders import sign
from models import Payment, User, WebhookEvent
from tests.conftest import TEST_SECRET
from tests.marketplace import ADDRESS, event_id, open_store, payment_event, place, signed

Headers = Callable[..., dict[str, str]]
DEEP = "[" * 10_000 + "]" * 10_000


def _problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    if field is not None:
        assert [error["field"] for error in body["errors"]] == [field], body
    return body


def _nested_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


async def test_nul_in_a_path_id_is_404(client: httpx.AsyncClient, auth: Headers) -> None:
    """An id holding U+0000 cannot exist: 404 on reads and writes alike."""
    customer, vendor = auth("c_nul_path"), auth("v_nul_path", "vendor")
    _problem(await client.get("/orders/%00", headers=customer), 404)
    _problem(await client.get("/orders/a%00b/", headers=customer), 404)
    _problem(await client.patch("/notifications/%00/read", headers=customer), 404)
    _problem(await client.get("/customer/orders/%00/tracking", headers=customer), 404)
    _problem(await client.post("/stores/%00/products", json={}, headers=vendor), 404)


async def test_nul_in_a_query_parameter(client: httpx.AsyncClient, auth: Headers) -> None:
    """A NUL in an id parameter is 404; in any other parameter a 400 naming it."""
    admin = auth("a_nul_query", "admin")
    _problem(await client.get("/customer/preferences?customerId=%00", headers=admin), 404)
    _problem(await client.get("/orders?storeId=x%00", headers=admin), 404)
    _problem(await client.get("/notifications?cursor=%00", headers=admin), 400, "cursor")
    _problem(await client.get("/notifications?type=A%00", headers=admin), 400, "type")


@pytest.mark.parametrize(
    ("path", "role", "body", "field"),
    [
        ("/stores", "vendor", {"name": "x\u0000y"}, "name"),
        ("/notifications", "admin", {"userId": "u", "type": "ACCOUNT_UPDATED", "title": "t\u0000",
                                     "message": "m"}, "title"),
        ("/notifications", "admin", {"userId": "u", "type": "ACCOUNT_UPDATED", "title": "t", "message": "m",
                                     "metadata": {"k": ["ok", "n\u0000"]}}, "metadata.k[1]"),
        ("/orders", "customer", {"storeId": "s", "items": [{"productId": "p", "quantity": 1}],
                                 "shippingAddress": {**ADDRESS, "line1": "\u0000"}}, "shippingAddress.line1"),
    ],
)  # fmt: skip
async def test_nul_in_json_text_is_400_naming_the_field(
    client: httpx.AsyncClient, auth: Headers, path: str, role: str, body: dict[str, Any], field: str
) -> None:
    """Text that PostgreSQL cannot store is refused before it reaches a query, with its field's path."""
    response = await client.post(path, content=json.dumps(body), headers=auth(f"u_nul_{role}", role))
    _problem(response, 400, field)


async def test_escaped_backslash_before_u0000_is_plain_text(client: httpx.AsyncClient, auth: Headers) -> None:
    """The six characters ``\\u0000`` (an escaped backslash) are ordinary text, stored as sent."""
    response = await client.post("/stores", content=b'{"name": "a\\\\u0000b"}', headers=auth("v_backslash", "vendor"))
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "a\\u0000b"


async def test_nul_in_a_token_claim_is_401_and_writes_nothing(client: httpx.AsyncClient) -> None:
    """A validly signed token whose display name holds U+0000 is refused, and no user row is written."""
    claims = {"sub": "u_nul_claim", "role": "customer", "exp": int(time.time()) + 600, "name": "a\u0000b"}
    headers = {"Authorization": f"Bearer {jwt.encode(claims, TEST_SECRET, algorithm='HS256')}"}
    body = _problem(await client.get("/notifications", headers=headers), 401)
    assert "name" in body["detail"]
    assert not await User.exists().where(User.id == "u_nul_claim")


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("POST", "/orders", "customer"),
        ("POST", "/notifications", "admin"),
        ("POST", "/stores", "vendor"),
        ("POST", "/orders/ord_x/tracking", "vendor"),
        ("PATCH", "/orders/ord_x/status", "vendor"),
    ],
)
async def test_deep_json_is_400(client: httpx.AsyncClient, auth: Headers, method: str, path: str, role: str) -> None:
    """JSON nested 10,000 deep is a 400 on every body, not a RecursionError."""
    response = await client.request(method, path, content=DEEP, headers=auth(f"u_deep_{role}", role))
    assert "deeper than 32" in _problem(response, 400, "body")["detail"]


async def test_depth_limit_is_32_levels(client: httpx.AsyncClient, auth: Headers) -> None:
    """Metadata nested to 32 levels in all is accepted; one level more is refused."""
    admin = auth("a_depth", "admin")
    await client.get("/notifications", headers=auth("u_depth"))
    base = '{"userId": "u_depth", "type": "ACCOUNT_UPDATED", "title": "t", "message": "m", "metadata": '
    accepted = await client.post("/notifications", content=base + _nested_object(31) + "}", headers=admin)
    assert accepted.status_code == 201, accepted.text
    _problem(await client.post("/notifications", content=base + _nested_object(32) + "}", headers=admin), 400, "body")


async def test_deep_and_nul_webhooks_are_400_and_not_recorded(client: httpx.AsyncClient) -> None:
    """Signed webhook bodies nested too deep or holding NUL are 400; nothing is recorded."""
    recorded = await WebhookEvent.count()
    for raw, field in (
        (DEEP.encode(), "body"),
        (b'{"id": "evt_deep", "type": "payment.succeeded", "data": ' + _nested_object(40).encode() + b"}", "body"),
        (b'{"id": "evt_\\u0000", "type": "payment.succeeded", "data": {}}', "id"),
    ):
        headers = {"X-Signature": sign(TEST_SECRET, raw), "Content-Type": "application/json"}
        _problem(await client.post("/webhooks/payments", content=raw, headers=headers), 400, field)
        _problem(await client.post("/webhooks/payouts", content=raw, headers=headers), 400, field)
    assert await WebhookEvent.count() == recorded


async def test_amounts_beyond_32_bits_are_stored(client: httpx.AsyncClient, auth: Headers) -> None:
    """A payment of 2^31 minor units or more is applied and stored exactly (64-bit column)."""
    store, (product, _) = await open_store(client, auth, "v_big_amount")
    order = await place(client, auth, "c_big_amount", store, [(product, 1)])
    response = await payment_event(client, {**order, "totalCents": 2**31 + 7}, "processing")
    assert response.status_code == 200 and response.json()["outcome"] == "APPLIED", response.text
    row = await Payment.select(Payment.amount_cents).where(Payment.order == order["id"]).first()
    assert row == {"amount_cents": 2**31 + 7}


async def test_amounts_out_of_range_are_400_and_not_applied(client: httpx.AsyncClient, auth: Headers) -> None:
    """Amounts above 2^53 - 1 or negative are 400 naming data.amountCents; the event is not recorded."""
    store, (product, _) = await open_store(client, auth, "v_huge_amount")
    order = await place(client, auth, "c_huge_amount", store, [(product, 1)])
    for amount in (2**53, -1):
        event = event_id()
        response = await payment_event(client, {**order, "totalCents": amount}, "succeeded", event=event)
        _problem(response, 400, "data.amountCents")
        assert not await WebhookEvent.exists().where(WebhookEvent.id == event)
    payout = {"vendorId": "v_huge_amount", "payoutId": "po_huge", "amountCents": 2**63, "currency": "USD"}
    raw, headers = signed({"id": event_id(), "type": "payout.processed", "data": payout})
    _problem(await client.post("/webhooks/payouts", content=raw, headers=headers), 400, "data.amountCents")


async def test_order_total_beyond_its_column_is_400(client: httpx.AsyncClient, auth: Headers) -> None:
    """An order whose total would overflow its 32-bit column is refused naming items, and not created."""
    store, (product,) = await open_store(client, auth, "v_pricey", prices=(100_000_000,))
    body = {"storeId": store, "items": [{"productId": product, "quantity": 30}], "shippingAddress": ADDRESS}
    _problem(await client.post("/orders", json=body, headers=auth("c_pricey")), 400, "items")


async def test_every_body_over_1_mib_is_413(client: httpx.AsyncClient, auth: Headers) -> None:
    """Endpoints that never read their body (the ticket) refuse one over 1 MiB like the others."""
    big = b"x" * (1024 * 1024 + 1)
    headers = {**auth("u_big_body"), "Content-Type": "application/json"}
    _problem(await client.post("/realtime/ticket", content=big, headers=headers), 413)
    _problem(await client.post("/stores", content=big, headers=auth("v_big_body", "vendor")), 413)
    assert (await client.post("/realtime/ticket", headers=auth("u_big_body"))).status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"message": "m" * 4001}, "message"),
        ({"metadata": {"blob": "x" * 16_400}}, "metadata"),
        ({"channels": ["EMAIL"] * 50_000}, "channels"),
        ({"channels": ["EMAIL", "EMAIL"]}, "channels"),
        ({"channels": ["IN_APP", "FAX"]}, "channels[1]"),
        ({"channels": []}, "channels"),
    ],
)
async def test_notification_bounds(
    client: httpx.AsyncClient, auth: Headers, change: dict[str, Any], field: str
) -> None:
    """SPEC's bounds on POST /notifications: a field beyond them is a 400 naming it."""
    body = {"userId": "u_bounds", "type": "ACCOUNT_UPDATED", "title": "t", "message": "m", **change}
    _problem(await client.post("/notifications", json=body, headers=auth("a_bounds", "admin")), 400, field)


async def test_notification_bounds_admit_their_limits(client: httpx.AsyncClient, auth: Headers) -> None:
    """A 200-character title, a 4,000-character message, 16 KiB of metadata and all four channels are accepted."""
    await client.get("/notifications", headers=auth("u_limits"))
    metadata = {"blob": "x" * (16 * 1024 - 11)}
    assert len(json.dumps(metadata, separators=(",", ":"))) == 16 * 1024
    body = {
        "userId": "u_limits",
        "type": "ACCOUNT_UPDATED",
        "title": "t" * 200,
        "message": "m" * 4000,
        "metadata": metadata,
        "channels": ["IN_APP", "EMAIL", "SMS", "PUSH"],
    }
    response = await client.post("/notifications", json=body, headers=auth("a_limits", "admin"))
    assert response.status_code == 201, response.text
