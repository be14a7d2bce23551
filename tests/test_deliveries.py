"""EMAIL, SMS and PUSH deliveries: real SMTP and HTTP servers started by the test, retries recorded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from litestar import Litestar

from app.main import create_app
from app.platform.settings import Settings
from app.runtime import Runtime
from app.services.deliveries import MAX_ATTEMPTS
from app.services.senders import sign
from models import NotificationDelivery
from tests.asgi import lifespan_running
from tests.processes import free_port


class Mailbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


class Provider:
    """A tiny HTTP server standing in for the SMS/PUSH provider; answers ``status`` and keeps the requests."""

    def __init__(self) -> None:
        self.status = 500
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n")[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((headers, body))
        writer.write(f"HTTP/1.1 {self.status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


@pytest.fixture
def mailbox() -> Any:
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


@pytest.fixture
async def provider() -> AsyncIterator[tuple[Provider, int]]:
    fake = Provider()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    yield fake, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
async def delivering_app(
    make_settings: Callable[..., Settings], database_url: str, mailbox: Any, provider: tuple[Provider, int]
) -> AsyncIterator[tuple[Litestar, httpx.AsyncClient]]:
    """An app with SMTP and a provider webhook configured, and a client of it."""
    settings = make_settings(
        DATABASE_URL=database_url,
        SMTP_URL=f"smtp://127.0.0.1:{mailbox[1]}",
        NOTIFY_WEBHOOK_URL=f"http://127.0.0.1:{provider[1]}/deliver",
        NOTIFY_WEBHOOK_SECRET="provider-secret",
    )
    app = create_app(settings)
    async with lifespan_running(app):
        await app.state.runtime.deliveries.stop()  # the test drives dispatch itself, step by step
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


async def _deliveries(notification_id: str) -> dict[str, dict[str, Any]]:
    rows = await NotificationDelivery.select().where(NotificationDelivery.notification == notification_id)
    return {row["channel"]: row for row in rows}


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
    records = await _deliveries(created["id"])
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
    records = await _deliveries(created["id"])
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
    record = (await _deliveries(created["id"]))["SMS"]
    assert record["status"] == "FAILED" and record["attempts"] == MAX_ATTEMPTS
    assert record["last_error"] == "provider answered 500"


async def test_unconfigured_channel_is_skipped_not_failed(client: httpx.AsyncClient, auth: Callable[..., Any]) -> None:
    """Without SMTP_URL or a provider URL, EMAIL/SMS/PUSH deliveries are recorded as SKIPPED."""
    await client.get("/me", headers=auth("u_skip"))
    body = {"userId": "u_skip", "type": "ACCOUNT_UPDATED", "title": "t", "message": "m", "channels": ["EMAIL", "PUSH"]}
    created = (await client.post("/notifications", json=body, headers=auth("svc", "service"))).json()
    records = await _deliveries(created["id"])
    assert {channel: row["status"] for channel, row in records.items()} == {"EMAIL": "SKIPPED", "PUSH": "SKIPPED"}
    assert "not configured" in records["EMAIL"]["last_error"]
