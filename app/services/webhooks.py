"""Payment and payout webhooks (SPEC "Webhooks"): signed, applied once per event id, forever.

The event id is inserted into ``webhook_events`` inside the transaction of its effect, so the
primary key decides between two deliveries of one event, also when they race: the loser's
transaction fails on the key, rolls back everything it did, and answers "duplicate". An unknown
order or vendor raises (422) before commit, so nothing is recorded and the provider's retry can
still take effect once the order exists.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import msgspec

from app.platform.database import UNIQUE_VIOLATIONS
from app.platform.errors import NotFound, Unauthorized, ValidationFailed
from app.platform.ids import new_id
from app.platform.json_body import decode_checked
from app.platform.timefmt import rfc3339
from app.platform.validation import validation_failed
from app.services import notification_catalog as catalog
from app.services.order_workflow import Actor, allowed_next
from app.services.order_writes import OrderWriter, change_status, lock_order
from models.catalog import User
from models.enums import OrderEventKind, OrderStatus, PaymentStatus, PayoutStatus, Role, WebhookOutcome
from models.orders import Order, Payment, Payout, WebhookEvent

__all__ = [
    "PAYMENT_TYPES",
    "PAYOUT_TYPES",
    "SIGNATURE_TOLERANCE_SECONDS",
    "Outcome",
    "apply_payment_event",
    "apply_payout_event",
    "verify_signature",
]

SIGNATURE_TOLERANCE_SECONDS = 300
MAX_AMOUNT_CENTS = 2**53 - 1
"""The largest amount a provider may report: integers beyond it lose precision in JavaScript clients."""
_T = TypeVar("_T")

PAYMENT_TYPES = {f"payment.{status.value.lower()}": status for status in PaymentStatus if status.value != "PENDING"}
PAYOUT_TYPES = {f"payout.{status.value.lower()}": status for status in PayoutStatus}

_Currency = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
_Amount = Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT_CENTS)]
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
_Reason = Annotated[str, msgspec.Meta(max_length=1000)]


class Outcome(StrEnum):
    """What a delivery did: took effect, was recorded as ignored (unknown type), or was a repeat."""

    APPLIED = "APPLIED"
    IGNORED = "IGNORED"
    DUPLICATE = "DUPLICATE"


class _Envelope(msgspec.Struct, frozen=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    data: Any = None  # already checked for depth and NUL with the whole body


def _data_of(envelope: _Envelope, struct: type[_T]) -> _T:
    """The envelope's ``data`` as the struct of a known event type; errors are named ``data.<field>``."""
    try:
        return msgspec.convert(envelope.data, struct, strict=True)
    except msgspec.ValidationError as exc:
        raise validation_failed(exc, root="data", prefix="data") from None


class _PaymentData(msgspec.Struct, frozen=True, rename="camel"):
    order_id: _Id
    amount_cents: _Amount
    currency: _Currency
    reason: _Reason | None = None


class _PayoutData(msgspec.Struct, frozen=True, rename="camel"):
    vendor_id: _Id
    payout_id: _Id
    amount_cents: _Amount
    currency: _Currency
    reason: _Reason | None = None


def verify_signature(secret: str, header: str | None, body: bytes, now: float | None = None) -> None:
    """Check ``X-Signature: t=<unix>,v1=<hex>`` (several ``v1`` allowed, for key rotation) against the raw body.

    Raises:
        Unauthorized: missing, malformed, wrong, or more than 5 minutes away from now.
    """
    if not header:
        raise Unauthorized("missing X-Signature")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise Unauthorized("X-Signature must be t=<unix seconds>,v1=<hex HMAC-SHA256>")
    if abs((time.time() if now is None else now) - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        raise Unauthorized("X-Signature timestamp is more than 5 minutes from now")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise Unauthorized("X-Signature does not match the body")


async def _record(envelope: _Envelope, source: str, outcome: Outcome, now: datetime) -> None:
    """Remember the event id in the effect's transaction: a repeat (or a racing copy) hits the primary key."""
    await WebhookEvent.insert(
        WebhookEvent(
            id=envelope.id,
            source=source,
            type=envelope.type,
            outcome=WebhookOutcome(outcome.value).value,
            received_at=now,
        )
    )


def _decode(body: bytes, type_: type[_T]) -> _T:
    """Malformed or out-of-range input is a 400 naming the field: the provider must not retry it."""
    return decode_checked(body, type_)


async def _already_seen(event_id: str) -> bool:
    return bool(await WebhookEvent.exists().where(WebhookEvent.id == event_id))


async def apply_payment_event(writer: OrderWriter, body: bytes) -> tuple[str, Outcome]:
    """Apply one verified payment event; answers its id and outcome.

    Raises:
        ValidationFailed: (422) malformed data or an unknown order (nothing is recorded: the provider retries).
    """
    envelope = _decode(body, _Envelope)
    status = PAYMENT_TYPES.get(envelope.type)
    data = _data_of(envelope, _PaymentData) if status is not None else None
    outcome = Outcome.APPLIED if status is not None else Outcome.IGNORED
    try:
        async with writer.transaction() as changes:
            await _record(envelope, "payments", outcome, changes.now)
            if status is None or data is None:
                return envelope.id, outcome
            try:
                order = await lock_order(data.order_id, changes)
            except NotFound:
                raise ValidationFailed([("data.orderId", f"no order {data.order_id}")]) from None
            payment = await Payment.select(Payment.id).where(Payment.order == order.id).first()
            fields: dict[str, Any] = {
                "status": status.value,
                "amount_cents": data.amount_cents,
                "currency": data.currency,
                "reason": data.reason,
                "updated_at": changes.now,
            }
            if payment is None:
                await Payment.insert(
                    Payment(id=new_id("pay"), order=order.id, created_at=changes.now, **fields)
                )  # fmt: skip
            else:
                await Payment.update(dict[Any, Any](fields)).where(Payment.id == payment["id"])
            await Order.update({Order.payment_status: status.value, Order.updated_at: changes.now}).where(
                Order.id == order.id
            )
            note = f"payment {status.value}" + (f": {data.reason}" if data.reason else "")
            changes.log(order.id, OrderEventKind.PAYMENT, note=note)
            changes.notifications.extend(
                catalog.payment_changed(
                    order.id, order.customer_id, status, data.amount_cents, data.currency, data.reason
                )
            )
            event = {
                "orderId": order.id,
                "paymentStatus": status.value,
                "amountCents": data.amount_cents,
                "currency": data.currency,
                "at": rfc3339(changes.now),
            }
            changes.publish((f"order:{order.id}", f"user:{order.customer_id}"), "payment.status_changed", event)
            changes.customers.add(order.customer_id)
            # The order follows only where the table allows: a refund of a cancelled order records the payment only.
            target = {PaymentStatus.SUCCEEDED: OrderStatus.CONFIRMED, PaymentStatus.REFUNDED: OrderStatus.REFUNDED}.get(
                status
            )
            if target is not None and target in allowed_next(order.status, Actor.PAYMENT):
                await change_status(changes, order, target, Actor.PAYMENT, None)
    except UNIQUE_VIOLATIONS:
        if await _already_seen(envelope.id):
            return envelope.id, Outcome.DUPLICATE
        raise
    return envelope.id, outcome


async def apply_payout_event(writer: OrderWriter, body: bytes) -> tuple[str, Outcome]:
    """Apply one verified payout event; answers its id and outcome.

    Raises:
        ValidationFailed: (422) malformed data, an unknown vendor, or a payout id of another vendor.
    """
    envelope = _decode(body, _Envelope)
    status = PAYOUT_TYPES.get(envelope.type)
    data = _data_of(envelope, _PayoutData) if status is not None else None
    outcome = Outcome.APPLIED if status is not None else Outcome.IGNORED
    if data is not None:
        vendor = await User.select(User.role).where(User.id == data.vendor_id).first()
        if vendor is None or vendor["role"] != Role.VENDOR.value:
            raise ValidationFailed([("data.vendorId", f"no vendor {data.vendor_id}")])
    try:
        async with writer.transaction() as changes:
            await _record(envelope, "payouts", outcome, changes.now)
            if status is None or data is None:
                return envelope.id, outcome
            upserted = await Payout.raw(
                "INSERT INTO payouts (id, vendor_id, status, amount_cents, currency, reason, created_at, updated_at)"
                " VALUES ({}, {}, {}, {}, {}, {}, {}, {}) ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
                " amount_cents = excluded.amount_cents, currency = excluded.currency, reason = excluded.reason,"
                " updated_at = excluded.updated_at WHERE payouts.vendor_id = excluded.vendor_id RETURNING id",
                data.payout_id, data.vendor_id, status.value, data.amount_cents, data.currency, data.reason,
                changes.now, changes.now,
            )  # fmt: skip
            if not upserted:
                raise ValidationFailed([("data.payoutId", f"payout {data.payout_id} belongs to another vendor")])
            changes.notifications.extend(
                catalog.payout_changed(
                    data.vendor_id, data.payout_id, status is PayoutStatus.PROCESSED, data.amount_cents,
                    data.currency, data.reason,
                )
            )  # fmt: skip
    except UNIQUE_VIOLATIONS:
        if await _already_seen(envelope.id):
            return envelope.id, Outcome.DUPLICATE
        raise
    return envelope.id, outcome
