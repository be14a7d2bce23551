"""escalateAfterSeconds (SPEC "Preferences, per user"): EMAIL, SMS and PUSH wait, and are skipped when the
notification was seen or read by then; sent once however many processes run; implied URGENT after 120 s."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar

from app.runtime import Runtime
from models import Notification
from tests.delivery_support import Provider, by_channel, deliveries_of, outcomes, sign_in_with_email
from tests.processes import server_process
from tests.scaling import server_env
from tests.services import REDIS_URL, reachable, unavailable, unique_name
from tests.waiting import eventually


@pytest.mark.parametrize("action", ["seen", "read"])
async def test_escalation_seen_before_it_is_due_is_skipped(
    delivering_app: tuple[Litestar, httpx.AsyncClient],
    auth: Callable[..., dict[str, str]],
    mailbox: Any,
    provider: tuple[Provider, int],
    action: str,
) -> None:
    """EMAIL/SMS/PUSH of a notification with escalateAfterSeconds wait that long; seen or read by then, they are
    skipped_seen and nothing is sent."""
    app, client = delivering_app
    runtime: Runtime = app.state.runtime
    fake, _ = provider
    fake.status = 200
    user = f"u_escalate_{action}"
    user_headers = await sign_in_with_email(client, runtime, user)
    body = {"userId": user, "type": "PAYMENT_FAILED", "priority": "URGENT", "title": "t", "message": "m"}
    body |= {"channels": ["IN_APP", "EMAIL", "SMS", "PUSH"], "escalateAfterSeconds": 1}
    created = (await client.post("/notifications", json=body, headers=auth("svc", "service"))).json()
    records = await deliveries_of(created["id"])
    row = await Notification.select(Notification.created_at).where(Notification.id == created["id"]).first()
    assert row is not None
    due = row["created_at"] + timedelta(seconds=1)
    assert {channel: row["next_attempt_at"] for channel, row in records.items()} == dict.fromkeys(records, due)
    change = {"ids": [created["id"]], "action": action}
    assert (await client.patch("/notifications/bulk", json=change, headers=user_headers)).json() == {"updated": 1}

    assert await eventually(runtime.deliveries.dispatch_due, within=10, what="the escalation fell due") == 3
    assert by_channel(await outcomes(client, auth, created["id"])) == dict.fromkeys(
        ("EMAIL", "SMS", "PUSH"), ("skipped_seen", 0)
    )
    assert mailbox[0].messages == [] and fake.requests == []


async def test_escalation_bounds(client: httpx.AsyncClient, auth: Callable[..., Any]) -> None:
    """escalateAfterSeconds outside 1..86400 is a 400 naming it."""
    await client.get("/me", headers=auth("u_bounds"))
    body = {"userId": "u_bounds", "type": "ACCOUNT_UPDATED", "title": "t", "message": "m", "channels": ["SMS"]}
    for seconds in (0, 86401, 1.5):
        response = await client.post(
            "/notifications", json={**body, "escalateAfterSeconds": seconds}, headers=auth("svc", "service")
        )
        assert response.status_code == 400, response.text
        assert [error["field"] for error in response.json()["errors"]] == ["escalateAfterSeconds"]


def test_implied_urgent_notifications_escalate_after_120_seconds() -> None:
    """Payment and payout failures (URGENT) go on every medium, escalating after 120 s; the others stay in-app."""
    from app.services.notification_catalog import payment_changed, payout_changed
    from models.enums import DeliveryMedium, PaymentStatus

    (failed,) = payment_changed("ord_1", "u_1", PaymentStatus.FAILED, 100, "USD")
    (payout_failed,) = payout_changed("v_1", "po_1", False, 100, "USD")
    for draft in (failed, payout_failed):
        assert draft.media == tuple(DeliveryMedium) and draft.escalate_after_seconds == 120
    (succeeded,) = payment_changed("ord_1", "u_1", PaymentStatus.SUCCEEDED, 100, "USD")
    assert succeeded.media == (DeliveryMedium.IN_APP,) and succeeded.escalate_after_seconds is None


async def test_escalation_not_seen_is_sent_once_by_three_processes(
    database_url: str,
    token_for: Callable[..., str],
    auth: Callable[..., dict[str, str]],
    mailbox: Any,
    provider: tuple[Provider, int],
) -> None:
    """Three server processes share the deliveries of an escalation nobody saw: each medium is sent exactly once."""
    if not reachable("127.0.0.1", 6379):
        unavailable("Redis is not reachable at 127.0.0.1:6379")
    fake, provider_port = provider
    fake.status = 200
    env = server_env(
        REDIS_URL,
        database_url,
        unique_name("escalate"),
        SMTP_URL=f"smtp://127.0.0.1:{mailbox[1]}",
        NOTIFY_WEBHOOK_URL=f"http://127.0.0.1:{provider_port}/deliver",
        NOTIFY_WEBHOOK_SECRET="provider-secret",
    )
    user = f"u_escalate_3p_{database_url[:6]}"
    with (
        server_process(env, host="127.0.0.2") as first,
        server_process(env, host="127.0.0.3") as second,
        server_process(env, host="127.0.0.4") as third,
    ):
        async with httpx.AsyncClient() as http:
            email_token = token_for(user, email=f"{user}@example.com")
            assert (
                await http.get(f"{first}/me", headers={"Authorization": f"Bearer {email_token}"})
            ).status_code == 200
            body = {"userId": user, "type": "ORDER_STATUS_UPDATED", "title": "Shipped", "message": "m"}
            body |= {"channels": ["IN_APP", "EMAIL", "SMS", "PUSH"], "escalateAfterSeconds": 2}
            created = (await http.post(f"{second}/notifications", json=body, headers=auth("svc", "service"))).json()
            url = f"{third}/notifications/{created['id']}/deliveries"

            async def all_final() -> list[dict[str, Any]] | None:
                items: list[dict[str, Any]] = (await http.get(url, headers=auth("svc", "service"))).json()["items"]
                return items if all(item["outcome"] != "retrying" for item in items) else None

            items = await eventually(all_final, within=30, interval=0.1, what="every delivery final")
            # attempts counts claims: 1 means no second process ever claimed the delivery.
            assert by_channel(items) == dict.fromkeys(("EMAIL", "SMS", "PUSH"), ("sent", 1))
            assert datetime.fromisoformat(items[0]["at"]) >= datetime.fromisoformat(created["createdAt"]) + timedelta(
                seconds=2
            )
    assert len(mailbox[0].messages) == 1
    assert sorted(msgspec.json.decode(payload)["channel"] for _, payload in fake.requests) == ["PUSH", "SMS"]


async def test_failed_payment_webhook_escalates_after_120_seconds(
    delivering_app: tuple[Litestar, httpx.AsyncClient], auth: Callable[..., dict[str, str]]
) -> None:
    """A payment.failed webhook implies an URGENT notification in the bell at once, its EMAIL/SMS/PUSH due 120 s on."""
    from tests.marketplace import open_store, payment_event, place

    _, client = delivering_app
    store, (product, _) = await open_store(client, auth, "v_escalate_webhook")
    order = await place(client, auth, "c_escalate_webhook", store, [(product, 1)])
    assert (await payment_event(client, order, "failed", reason="card declined")).status_code == 200
    row = (
        await Notification.select()
        .where((Notification.user == "c_escalate_webhook") & (Notification.type == "PAYMENT_FAILED"))
        .first()
    )
    assert row is not None and row["priority"] == "URGENT" and row["escalate_after_seconds"] == 120
    assert row["sent_at"] is not None and row["archived_at"] is None
    records = await deliveries_of(row["id"])
    assert sorted(records) == ["EMAIL", "PUSH", "SMS"]
    assert {record["next_attempt_at"] for record in records.values()} == {row["sent_at"] + timedelta(seconds=120)}


async def test_escalation_of_a_notification_kept_out_of_the_bell_is_sent_at_once(
    delivering_app: tuple[Litestar, httpx.AsyncClient], auth: Callable[..., dict[str, str]], mailbox: Any
) -> None:
    """With IN_APP off the notification is stored seen, so waiting for the user to see it makes no sense: its email
    is due at once and sent, not skipped_seen."""
    app, client = delivering_app
    runtime: Runtime = app.state.runtime
    user = "u_muted_escalation"
    user_headers = await sign_in_with_email(client, runtime, user)
    muted = await client.put("/notifications/preferences", json={"channels": {"IN_APP": False}}, headers=user_headers)
    assert muted.status_code == 200
    body = {"userId": user, "type": "ACCOUNT_UPDATED", "title": "t", "message": "m", "channels": ["IN_APP", "EMAIL"]}
    created = await client.post(
        "/notifications", json={**body, "escalateAfterSeconds": 3600}, headers=auth("svc", "service")
    )
    assert created.json()["isSeen"] is True and created.json()["archivedAt"] is not None
    assert await runtime.deliveries.dispatch_due() == 1
    assert by_channel(await outcomes(client, auth, created.json()["id"])) == {"EMAIL": ("sent", 1)}
    assert len(mailbox[0].messages) == 1
