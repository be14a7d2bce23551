"""Signed provider webhooks (no JWT): payments and payouts. Each answers ``{"id", "outcome"}``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter

from app.http.openapi import problems
from app.platform.settings import Settings
from app.services.order_writes import OrderWriter
from app.services.webhooks import Outcome, apply_payment_event, apply_payout_event, verify_signature

__all__ = ["WebhookReceipt", "WebhooksController"]

_Signature = Annotated[str | None, HeaderParameter(name="X-Signature")]


class WebhookReceipt(msgspec.Struct, frozen=True):
    """What a delivery did: ``APPLIED``, ``IGNORED`` (unknown type, recorded) or ``DUPLICATE`` (a repeat)."""

    id: str
    outcome: Outcome


async def _receive(
    request: Request[Any, Any, Any],
    settings: Settings,
    order_writer: OrderWriter,
    signature: str | None,
    apply: Callable[[OrderWriter, bytes], Awaitable[tuple[str, Outcome]]],
) -> WebhookReceipt:
    # The signature covers the exact bytes sent, so the body is verified before it is parsed.
    body = await request.body()
    verify_signature(settings.webhook_secret, signature, body)
    event_id, outcome = await apply(order_writer, body)
    return WebhookReceipt(event_id, outcome)


class WebhooksController(Controller):
    """The payment provider's events."""

    path = "/webhooks"
    tags = ("webhooks",)

    @post("/payments", status_code=200, summary="payment.processing|succeeded|failed|refunded", opt=problems(422))
    async def payments(
        self,
        request: Request[Any, Any, Any],
        settings: NamedDependency[Settings],
        order_writer: NamedDependency[OrderWriter],
        x_signature: _Signature = None,
    ) -> WebhookReceipt:
        return await _receive(request, settings, order_writer, x_signature, apply_payment_event)

    @post("/payouts", status_code=200, summary="payout.processed|failed", opt=problems(422))
    async def payouts(
        self,
        request: Request[Any, Any, Any],
        settings: NamedDependency[Settings],
        order_writer: NamedDependency[OrderWriter],
        x_signature: _Signature = None,
    ) -> WebhookReceipt:
        return await _receive(request, settings, order_writer, x_signature, apply_payout_event)
