"""The notifications that order, payment and payout changes imply: SPEC's table, in one place.

Each function answers the drafts for one domain change; the caller writes them in the change's
transaction with :func:`app.services.notifications.write_notifications`.

The ``URGENT`` ones (payment failed, payout failed) go out on every medium, escalating: EMAIL, SMS
and PUSH wait :data:`URGENT_ESCALATION_SECONDS` and are skipped if the recipient has seen or read
the notification in the app by then (SPEC "Preferences"). The others are in-app only.
"""

from __future__ import annotations

import msgspec

from app.services.notifications import NotificationDraft
from models.enums import DeliveryMedium, OrderStatus, PaymentStatus
from models.enums import NotificationPriority as Priority
from models.enums import NotificationType as Type

__all__ = [
    "URGENT_ESCALATION_SECONDS",
    "account_updated",
    "order_cancelled",
    "order_placed",
    "order_status_changed",
    "payment_changed",
    "payout_changed",
]

_STATUS_WORDS = {
    OrderStatus.CONFIRMED: "was confirmed",
    OrderStatus.PROCESSING: "is being prepared",
    OrderStatus.SHIPPED: "has shipped",
    OrderStatus.OUT_FOR_DELIVERY: "is out for delivery",
    OrderStatus.DELIVERED: "was delivered",
    OrderStatus.REFUNDED: "was refunded",
}


URGENT_ESCALATION_SECONDS = 120
_URGENT_MEDIA = tuple(DeliveryMedium)


def _escalating(drafts: list[NotificationDraft]) -> list[NotificationDraft]:
    """The URGENT drafts sent on every medium, EMAIL/SMS/PUSH after 120 s; the others as they are."""
    return [
        msgspec.structs.replace(draft, media=_URGENT_MEDIA, escalate_after_seconds=URGENT_ESCALATION_SECONDS)
        if draft.priority is Priority.URGENT
        else draft
        for draft in drafts
    ]


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency}"


def order_placed(
    order_id: str, customer_id: str, vendor_id: str, total_cents: int, currency: str
) -> list[NotificationDraft]:
    """Order placed: the customer (LOW) and the store's vendor (MEDIUM)."""
    metadata = {"orderId": order_id}
    return [
        NotificationDraft(
            user_id=customer_id,
            type=Type.ORDER_CREATED,
            priority=Priority.LOW,
            title="Order placed",
            message=f"Your order {order_id} for {_money(total_cents, currency)} was placed.",
            metadata=metadata,
        ),
        NotificationDraft(
            user_id=vendor_id,
            type=Type.ORDER_CREATED,
            priority=Priority.MEDIUM,
            title="New order",
            message=f"New order {order_id} for {_money(total_cents, currency)}.",
            metadata=metadata,
        ),
    ]


def order_status_changed(order_id: str, customer_id: str, to_status: OrderStatus) -> list[NotificationDraft]:
    """A status change for the customer: DELIVERED is ORDER_DELIVERED (HIGH); SHIPPED and OUT_FOR_DELIVERY are HIGH."""
    metadata = {"orderId": order_id, "status": to_status.value}
    if to_status is OrderStatus.DELIVERED:
        return [
            NotificationDraft(
                user_id=customer_id,
                type=Type.ORDER_DELIVERED,
                priority=Priority.HIGH,
                title="Order delivered",
                message=f"Your order {order_id} was delivered.",
                metadata=metadata,
            )
        ]
    high = to_status in (OrderStatus.SHIPPED, OrderStatus.OUT_FOR_DELIVERY)
    return [
        NotificationDraft(
            user_id=customer_id,
            type=Type.ORDER_STATUS_UPDATED,
            priority=Priority.HIGH if high else Priority.MEDIUM,
            title="Order update",
            message=f"Your order {order_id} {_STATUS_WORDS.get(to_status, 'changed')}.",
            metadata=metadata,
        )
    ]


def order_cancelled(order_id: str, customer_id: str, vendor_id: str) -> list[NotificationDraft]:
    """Cancelled: the customer and the vendor, both MEDIUM."""
    metadata = {"orderId": order_id}
    return [
        NotificationDraft(
            user_id=user_id,
            type=Type.ORDER_CANCELLED,
            priority=Priority.MEDIUM,
            title="Order cancelled",
            message=f"Order {order_id} was cancelled.",
            metadata=metadata,
        )
        for user_id in (customer_id, vendor_id)
    ]


_PAYMENT = {
    PaymentStatus.PROCESSING: (Type.PAYMENT_PROCESSING, Priority.LOW, "Payment processing", "is being processed"),
    PaymentStatus.SUCCEEDED: (Type.PAYMENT_SUCCEEDED, Priority.MEDIUM, "Payment received", "was received"),
    PaymentStatus.FAILED: (Type.PAYMENT_FAILED, Priority.URGENT, "Payment failed", "failed"),
    PaymentStatus.REFUNDED: (Type.PAYMENT_REFUNDED, Priority.MEDIUM, "Payment refunded", "was refunded"),
}


def payment_changed(
    order_id: str, customer_id: str, status: PaymentStatus, amount_cents: int, currency: str, reason: str | None = None
) -> list[NotificationDraft]:
    """Payment processing, succeeded, failed, refunded: the customer (LOW, MEDIUM, URGENT, MEDIUM)."""
    if status not in _PAYMENT:
        return []
    type_, priority, title, verb = _PAYMENT[status]
    message = f"Your payment of {_money(amount_cents, currency)} for order {order_id} {verb}."
    if reason:
        message += f" Reason: {reason}."
    draft = NotificationDraft(
        user_id=customer_id,
        type=type_,
        priority=priority,
        title=title,
        message=message,
        metadata={"orderId": order_id, "amountCents": amount_cents, "currency": currency},
    )
    return _escalating([draft])


def payout_changed(
    vendor_id: str, payout_id: str, processed: bool, amount_cents: int, currency: str, reason: str | None = None
) -> list[NotificationDraft]:
    """Payout processed (MEDIUM) or failed (URGENT): the vendor."""
    message = f"Payout {payout_id} of {_money(amount_cents, currency)} " + ("was sent." if processed else "failed.")
    if reason and not processed:
        message += f" Reason: {reason}."
    draft = NotificationDraft(
        user_id=vendor_id,
        type=Type.PAYOUT_PROCESSED if processed else Type.PAYOUT_FAILED,
        priority=Priority.MEDIUM if processed else Priority.URGENT,
        title="Payout sent" if processed else "Payout failed",
        message=message,
        metadata={"payoutId": payout_id, "amountCents": amount_cents, "currency": currency},
    )
    return _escalating([draft])


def account_updated(user_id: str, title: str, message: str) -> list[NotificationDraft]:
    """Account changes announced by an admin or a service (LOW)."""
    return [
        NotificationDraft(
            user_id=user_id, type=Type.ACCOUNT_UPDATED, priority=Priority.LOW, title=title, message=message
        )
    ]
