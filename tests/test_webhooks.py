"""Payment and payout webhooks on both engines: signatures, once-only effect (also racing), ignored types, 422s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from models import Notification, Order, OrderEvent, Payment, Payout, WebhookEvent
from tests.marketplace import event_id, open_store, payment_event, place, signed

Headers = Callable[..., dict[str, str]]


async def _order(client: httpx.AsyncClient, auth: Headers, tag: str) -> dict[str, object]:
    store, (product, _) = await open_store(client, auth, f"v_{tag}")
    return await place(client, auth, f"c_{tag}", store, [(product, 1)])


async def test_signature_is_checked(client: httpx.AsyncClient, auth: Headers) -> None:
    """Missing, wrong-key, tampered and 6-minute-old signatures are 401 and record nothing."""
    order = await _order(client, auth, "sig")
    body = {
        "id": event_id(),
        "type": "payment.succeeded",
        "data": {"orderId": order["id"], "amountCents": 1, "currency": "USD"},
    }
    raw, headers = signed(body)
    _, wrong = signed(body, secret="not-the-secret")
    _, stale = signed(body, now=int(time.time()) - 360)
    attempts = [
        await client.post("/webhooks/payments", content=raw, headers={"Content-Type": "application/json"}),
        await client.post("/webhooks/payments", content=raw, headers=wrong),
        await client.post("/webhooks/payments", content=raw + b" ", headers=headers),
        await client.post("/webhooks/payments", content=raw, headers=stale),
        await client.post("/webhooks/payments", content=raw, headers={"X-Signature": "v1=abc"}),
    ]
    assert [response.status_code for response in attempts] == [401] * 5
    assert all(response.headers["content-type"].startswith("application/problem+json") for response in attempts)
    assert not await WebhookEvent.exists().where(WebhookEvent.id == body["id"])
    assert (await client.post("/webhooks/payments", content=raw, headers=headers)).json()["outcome"] == "APPLIED"


async def test_repeat_changes_nothing(client: httpx.AsyncClient, auth: Headers) -> None:
    """A succeeded payment confirms the order once; its repeat answers 200 DUPLICATE and writes nothing."""
    order = await _order(client, auth, "dup")
    first = await payment_event(client, order, "succeeded", event="evt_dup_1")
    assert first.status_code == 200 and first.json() == {"id": "evt_dup_1", "outcome": "APPLIED"}
    row = await Order.select(Order.status, Order.payment_status).where(Order.id == order["id"]).first()
    assert row == {"status": "CONFIRMED", "payment_status": "SUCCEEDED"}
    counts = (await OrderEvent.count(), await Notification.count())
    again = await payment_event(client, order, "succeeded", event="evt_dup_1")
    assert again.status_code == 200 and again.json()["outcome"] == "DUPLICATE"
    assert (await OrderEvent.count(), await Notification.count()) == counts


async def test_concurrent_deliveries_take_effect_once(client: httpx.AsyncClient, auth: Headers) -> None:
    """Five racing deliveries of one event: one APPLIED, four DUPLICATE, one payment event and one confirmation."""
    order = await _order(client, auth, "race")
    responses = await asyncio.wait_for(
        asyncio.gather(*(payment_event(client, order, "succeeded", event="evt_race") for _ in range(5))), 30
    )
    assert sorted(response.json()["outcome"] for response in responses) == ["APPLIED"] + ["DUPLICATE"] * 4
    kinds = await OrderEvent.select(OrderEvent.kind).where(OrderEvent.order == order["id"])
    assert sorted(row["kind"] for row in kinds) == ["CREATED", "PAYMENT", "STATUS_CHANGED"]


async def test_unknown_type_is_ignored_and_unknown_order_retried(client: httpx.AsyncClient, auth: Headers) -> None:
    """An unknown type is 200 IGNORED and recorded; an unknown order is 422 and not recorded, so a retry can apply;
    malformed data is 400 naming the field (a retry would not help)."""
    raw, headers = signed({"id": "evt_odd", "type": "payment.disputed", "data": {}})
    ignored = await client.post("/webhooks/payments", content=raw, headers=headers)
    assert ignored.json() == {"id": "evt_odd", "outcome": "IGNORED"}
    recorded = await WebhookEvent.select(WebhookEvent.outcome).where(WebhookEvent.id == "evt_odd").first()
    assert recorded == {"outcome": "IGNORED"}
    ghost = {"id": "ord_ghost", "totalCents": 100, "currency": "USD"}
    missing = await payment_event(client, ghost, "succeeded", event="evt_ghost")
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "data.orderId"
    assert not await WebhookEvent.exists().where(WebhookEvent.id == "evt_ghost")
    raw, headers = signed({"id": "evt_bad", "type": "payment.failed", "data": {"orderId": "x", "currency": "usd"}})
    malformed = await client.post("/webhooks/payments", content=raw, headers=headers)
    assert malformed.status_code == 400 and malformed.json()["errors"][0]["field"] == "data.currency"
    assert not await WebhookEvent.exists().where(WebhookEvent.id == "evt_bad")


async def test_refunds_follow_the_table(client: httpx.AsyncClient, auth: Headers) -> None:
    """A refund refunds a confirmed order; on a cancelled one it records the payment only (200)."""
    paid = await _order(client, auth, "refund")
    await payment_event(client, paid, "succeeded")
    refunded = await payment_event(client, paid, "refunded", reason="customer asked")
    assert refunded.status_code == 200
    row = await Order.select(Order.status, Order.payment_status).where(Order.id == paid["id"]).first()
    assert row == {"status": "REFUNDED", "payment_status": "REFUNDED"}
    payment = await Payment.select(Payment.status, Payment.reason).where(Payment.order == paid["id"]).first()
    assert payment == {"status": "REFUNDED", "reason": "customer asked"}
    cancelled = await _order(client, auth, "refund_cancelled")
    await client.post(f"/orders/{cancelled['id']}/cancel", headers=auth("c_refund_cancelled"))
    late = await payment_event(client, cancelled, "refunded")
    assert late.status_code == 200 and late.json()["outcome"] == "APPLIED"
    row = await Order.select(Order.status, Order.payment_status).where(Order.id == cancelled["id"]).first()
    assert row == {"status": "CANCELLED", "payment_status": "REFUNDED"}
    failed = await _order(client, auth, "failed")
    await payment_event(client, failed, "failed", reason="card declined")
    bell = await Notification.select(Notification.type, Notification.priority).where(
        (Notification.user == "c_failed") & (Notification.type == "PAYMENT_FAILED")
    )
    assert bell == [{"type": "PAYMENT_FAILED", "priority": "URGENT"}]


async def test_payouts(client: httpx.AsyncClient, auth: Headers) -> None:
    """Payouts upsert by payout id and notify the vendor; an unknown vendor or a customer id is a 422."""
    await open_store(client, auth, "v_payout")
    await client.get("/me", headers=auth("c_payout"))

    async def deliver(kind: str, vendor: str, event: str) -> httpx.Response:
        data = {"vendorId": vendor, "payoutId": "po_1", "amountCents": 9900, "currency": "USD", "reason": "bank"}
        raw, headers = signed({"id": event, "type": f"payout.{kind}", "data": data})
        return await client.post("/webhooks/payouts", content=raw, headers=headers)

    assert (await deliver("failed", "v_payout", "evt_po_1")).json()["outcome"] == "APPLIED"
    assert (await deliver("processed", "v_payout", "evt_po_2")).json()["outcome"] == "APPLIED"
    assert (await deliver("processed", "v_payout", "evt_po_2")).json()["outcome"] == "DUPLICATE"
    assert (await deliver("processed", "v_nobody", "evt_po_3")).status_code == 422
    assert (await deliver("processed", "c_payout", "evt_po_4")).status_code == 422
    payout = await Payout.select(Payout.status, Payout.amount_cents).where(Payout.id == "po_1").first()
    assert payout == {"status": "PROCESSED", "amount_cents": 9900}
    bells = (
        await Notification.select(Notification.type, Notification.priority)
        .where(Notification.user == "v_payout")
        .order_by(Notification.created_at)
    )
    assert [(row["type"], row["priority"]) for row in bells if row["type"].startswith("PAYOUT")] == [
        ("PAYOUT_FAILED", "URGENT"),
        ("PAYOUT_PROCESSED", "MEDIUM"),
    ]
