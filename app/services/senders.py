"""Senders of the delivery media beyond the bell: EMAIL over SMTP, SMS and PUSH through a provider webhook.

Each sender raises :class:`DeliveryFailed` with a short reason; the dispatcher records it and retries.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from abc import ABC, abstractmethod
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib
import httpx
import msgspec

__all__ = ["DeliveryFailed", "EmailSender", "Recipient", "Sender", "WebhookSender", "sign"]


class DeliveryFailed(Exception):
    """A delivery attempt failed; the message says why (kept as the delivery's ``lastError``)."""


class Recipient(msgspec.Struct, frozen=True):
    """Who a delivery goes to."""

    user_id: str
    email: str | None
    name: str | None


class Sender(ABC):
    """Delivers one notification on one medium (EMAIL, SMS or PUSH)."""

    @abstractmethod
    async def send(self, recipient: Recipient, notification: dict[str, Any]) -> None:
        """Deliver, or raise :class:`DeliveryFailed`."""


def sign(secret: str, body: bytes, now: int | None = None) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``: the scheme of SPEC's webhooks, used for ours too."""
    timestamp = int(time.time()) if now is None else now
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class EmailSender(Sender):
    """Sends a plain-text email through the SMTP server of ``SMTP_URL`` (``smtp://user:pass@host:port``)."""

    def __init__(self, smtp_url: str, sender_address: str = "notifications@marketplace.invalid") -> None:
        parts = urlsplit(smtp_url)
        self.hostname = parts.hostname or "127.0.0.1"
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.use_tls = parts.scheme == "smtps"
        self.sender_address = sender_address

    async def send(self, recipient: Recipient, notification: dict[str, Any]) -> None:
        if not recipient.email:
            raise DeliveryFailed("the user has no email address (no 'email' claim seen)")
        message = EmailMessage()
        message["From"] = self.sender_address
        message["To"] = recipient.email
        message["Subject"] = notification["title"]
        message.set_content(notification["message"])
        try:
            await aiosmtplib.send(
                message,
                hostname=self.hostname,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.use_tls,
                start_tls=False if self.use_tls else None,  # smtp:// upgrades when the server offers it
                timeout=10,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"SMTP: {exc}") from None


class WebhookSender(Sender):
    """POSTs signed JSON to the provider URL of ``NOTIFY_WEBHOOK_URL`` (for SMS and PUSH)."""

    def __init__(self, url: str, secret: str | None, medium: str, client: httpx.AsyncClient) -> None:
        self.url = url
        self.secret = secret
        self.medium = medium
        self.client = client

    async def send(self, recipient: Recipient, notification: dict[str, Any]) -> None:
        body = msgspec.json.encode(
            {
                "channel": self.medium,  # the provider's wire name (SPEC "Settings", NOTIFY_WEBHOOK_URL)
                "notificationId": notification["id"],
                "userId": recipient.user_id,
                "type": notification["type"],
                "priority": notification["priority"],
                "title": notification["title"],
                "message": notification["message"],
            }
        )
        headers = {"Content-Type": "application/json"}
        if self.secret:
            headers["X-Signature"] = sign(self.secret, body)
        try:
            response = await self.client.post(self.url, content=body, headers=headers, timeout=10)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"provider unreachable: {exc!r}") from None
        if response.status_code >= 300:
            raise DeliveryFailed(f"provider answered {response.status_code}")
