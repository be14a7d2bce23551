"""EMAIL, SMS and PUSH deliveries: real SMTP and HTTP servers started by the test, retries recorded;
preferences read at send time, the deliveries endpoint. Escalation: tests/test_escalation.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
from litestar import Litestar

from app.runtime import Runtime
from app.services.deliveries import MAX_ATTEMPTS
from app.services.senders import sign
from models import NotificationDelivery
from tests.delivery_support import Provider, by_channel, deliveries_of, outcomes, sign_in_with_email


async def test_email_sms_push_delivered_and_failures_retried(
    delivering_app: tuple[Litestar, httpx.AsyncClient],
    auth: Callable[..., dict[str, str]],
    mailbox: Any,
    provider: tuple[Provider, int],
) -> None:
    """Email reaches the SMTP server; a failing provider is retried with backoff and recorded, then succeeds."""
    app, client = delivering_app
    runtime: Runtime = app.state.runtime
    fake, _ = provider
    token_headers = auth("u_mail")
    await client.get("/me", headers=token_headers)
    from app.platform.auth import mint_token
    from models.enums import Role

    with_email = mint_token(runtime.settings, "u_mail", Role.CUSTOMER, email="ada@example.com")
    await client.get("/me", headers={"Authorization": f"Bearer {with_email}"})
    body = {
        "userId": "u_mail",
        "type": "PAYMENT_FAILED",
        "title": "Payment failed",
        "message": "Card declined",
        "priority": "URGENT",
        "channels": ["IN_APP", "EMAIL", "SMS", "PUSH"],
    }
    created = (await client.post("/notifications", json=body, headers=auth("svc", "service"))).json()
    assert await runtime.deliveries.dispatch_due() == 3

    (mail,) = mailbox[0].messages
    assert mail["To"] == "ada@example.com" and mail["Subject"] == "Payment failed"
    records = await deliveries_of(created["id"])
    assert records["EMAIL"]["status"] == "SENT" and records["EMAIL"]["sent_at"] is not None
    for channel in ("SMS", "PUSH"):
        assert records[channel]["status"] == "PENDING"
        assert records[channel]["attempts"] == 1 and records[channel]["last_error"] == "provider answered 500"
        assert records[channel]["next_attempt_at"] > datetime.now(UTC)
    headers, payload = fake.requests[0]
    timestamp = headers["x-signature"].split(",")[0].removeprefix("t=")
    assert headers["x-signature"] == sign("provider-secret", payload, int(timestamp))

    assert await runtime.deliveries.dispatch_due() == 0  # backing off: nothing due yet
    fake.status = 200
    await NotificationDelivery.update({NotificationDelivery.next_attempt_at: datetime.now(UTC)}).where(
        NotificationDelivery.notification == created["id"]
    )
    assert await runtime.deliveries.dispatch_due() == 2
    records = await deliveries_of(created["id"])
    assert {records[channel]["status"] for channel in ("SMS", "PUSH")} == {"SENT"}
    assert {records[channel]["attempts"] for channel in ("SMS", "PUSH")} == {2}


async def test_delivery_gives_up_after_max_attempts(
    delivering_app: tuple[Litestar, httpx.AsyncClient], auth: Callable[..., dict[str, str]]
) -> None:
    """A provider that keeps failing leaves the delivery FAILED after MAX_ATTEMPTS, with the last error."""
    app, client = delivering_app
    runtime: Runtime = app.state.runtime
    await client.get("/me", headers=auth("u_fail"))
    body = {"userId": "u_fail", "type": "ACCOUNT_UPDATED", "title": "t", "message": "m", "channels": ["SMS"]}
    created = (await client.post("/notifications", json=body, headers=auth("svc", "service"))).json()
    for _ in range(MAX_ATTEMPTS):
        await NotificationDelivery.update(
            {NotificationDelivery.next_attempt_at: datetime.now(UTC) - timedelta(seconds=1)}
        ).where(NotificationDelivery.status == "PENDING")
        await runtime.deliveries.dispatch_due()
    record = (await deliveries_of(created["id"]))["SMS"]
    assert record["status"] == "FAILED" and record["attempts"] == MAX_ATTEMPTS
    assert record["last_error"] == "provider answered 500"


async def test_unconfigured_channel_is_skipped_not_failed(client: httpx.AsyncClient, auth: Callable[..., Any]) -> None:
    """Without SMTP_URL or a provider URL, EMAIL/SMS/PUSH deliveries are recorded as SKIPPED."""
    await client.get("/me", headers=auth("u_skip"))
    body = {"userId": "u_skip", "type": "ACCOUNT_UPDATED", "title": "t", "message": "m", "channels": ["EMAIL", "PUSH"]}
    created = (await client.post("/notifications", json=body, headers=auth("svc", "service"))).json()
    records = await deliveries_of(created["id"])
    assert {channel: row["status"] for channel, row in records.items()} == {"EMAIL": "SKIPPED", "PUSH": "SKIPPED"}
    assert "not configured" in records["EMAIL"]["last_error"]


async def test_deliveries_endpoint_roles_and_shape(client: httpx.AsyncClient, auth: Callable[..., Any]) -> None:
    """Admins and services read a notification's deliveries ({channel, outcome, attempts, at}); others get 403; an
    unknown id is 404; a notification for the bell only has none."""
    await client.get("/me", headers=auth("u_records"))
    body = {"userId": "u_records", "type": "ACCOUNT_UPDATED", "title": "t", "message": "m"}
    created = (
        await client.post(
            "/notifications", json={**body, "channels": ["EMAIL", "IN_APP", "PUSH"]}, headers=auth("svc", "service")
        )
    ).json()
    for role, status in (("customer", 403), ("vendor", 403), ("admin", 200), ("service", 200)):
        response = await client.get(f"/notifications/{created['id']}/deliveries", headers=auth("u_records", role))
        assert response.status_code == status, (role, response.text)
    items = await outcomes(client, auth, created["id"])
    assert [set(item) for item in items] == [{"channel", "outcome", "attempts", "at"}] * 2
    assert [(item["channel"], item["outcome"], item["attempts"]) for item in items] == [
        ("EMAIL", "skipped_unconfigured", 0),
        ("PUSH", "skipped_unconfigured", 0),
    ]
    assert items[0]["at"].endswith("Z")
    missing = await client.get("/notifications/ntf_nope/deliveries", headers=auth("admin", "admin"))
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    bell_only = (await client.post("/notifications", json=body, headers=auth("svc", "service"))).json()
    assert await outcomes(client, auth, bell_only["id"]) == []


async def test_turned_off_media_are_skipped_at_send_time(
    delivering_app: tuple[Litestar, httpx.AsyncClient],
    auth: Callable[..., dict[str, str]],
    mailbox: Any,
    provider: tuple[Provider, int],
) -> None:
    """Preferences changed after creation decide at send time: a type's own setting beats the channel's; what is
    off is recorded skipped_preference and never reaches the SMTP server or the provider."""
    app, client = delivering_app
    runtime: Runtime = app.state.runtime
    fake, _ = provider
    fake.status = 200
    user_headers = await sign_in_with_email(client, runtime, "u_prefs_send")
    everything = ["IN_APP", "EMAIL", "SMS", "PUSH"]
    body = {"userId": "u_prefs_send", "title": "t", "message": "m", "channels": everything}
    service = auth("svc", "service")
    account = (await client.post("/notifications", json={**body, "type": "ACCOUNT_UPDATED"}, headers=service)).json()
    order = (await client.post("/notifications", json={**body, "type": "ORDER_CREATED"}, headers=service)).json()
    change = {"channels": {"EMAIL": False, "SMS": False}, "types": {"ACCOUNT_UPDATED": {"EMAIL": True, "PUSH": False}}}
    changed = await client.patch("/notifications/preferences", json=change, headers=user_headers)
    assert changed.status_code == 200

    assert await runtime.deliveries.dispatch_due() == 6
    assert by_channel(await outcomes(client, auth, account["id"])) == {
        "EMAIL": ("sent", 1),  # the type's own "on" beats the channel's "off"
        "SMS": ("skipped_preference", 0),
        "PUSH": ("skipped_preference", 0),  # the type's own "off" beats the channel's "on"
    }
    assert by_channel(await outcomes(client, auth, order["id"])) == {
        "EMAIL": ("skipped_preference", 0),
        "SMS": ("skipped_preference", 0),
        "PUSH": ("sent", 1),
    }
    (mail,) = mailbox[0].messages
    assert mail["To"] == "u_prefs_send@example.com"
    assert [msgspec.json.decode(payload)["notificationId"] for _, payload in fake.requests] == [order["id"]]
