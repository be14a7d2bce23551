"""A real SMTP server and a provider webhook receiver for the delivery tests, an app delivering to them, helpers.

A plugin of tests/conftest.py, so its fixtures (``mailbox``, ``provider``, ``delivering_app``) reach
every module without imports.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from email import message_from_bytes
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from litestar import Litestar

from app.main import create_app
from app.platform.settings import Settings
from app.runtime import Runtime
from models import NotificationDelivery
from tests.asgi import lifespan_running
from tests.processes import free_port

__all__ = [
    "Mailbox",
    "Provider",
    "by_channel",
    "deliveries_of",
    "delivering_app",
    "mailbox",
    "outcomes",
    "provider",
    "sign_in_with_email",
]


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


async def deliveries_of(notification_id: str) -> dict[str, dict[str, Any]]:
    rows = await NotificationDelivery.select().where(NotificationDelivery.notification == notification_id)
    return {row["channel"]: row for row in rows}


async def outcomes(client: httpx.AsyncClient, auth: Callable[..., Any], notification_id: str) -> list[dict[str, Any]]:
    """The items of ``GET /notifications/{id}/deliveries``, asked by a service."""
    response = await client.get(f"/notifications/{notification_id}/deliveries", headers=auth("svc", "service"))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def by_channel(items: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
    return {item["channel"]: (item["outcome"], item["attempts"]) for item in items}


async def sign_in_with_email(client: httpx.AsyncClient, runtime: Runtime, user_id: str) -> dict[str, str]:
    """Sign in with an email claim; answers the headers to keep using (a token without one would clear it)."""
    from app.platform.auth import mint_token
    from models.enums import Role

    token = mint_token(runtime.settings, user_id, Role.CUSTOMER, email=f"{user_id}@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/me", headers=headers)).status_code == 200
    return headers
