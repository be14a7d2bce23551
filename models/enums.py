"""The domain's enumerations, each defined once.

Tables, services, wire payloads and the CHECK constraints of the migrations all use these
values; the values are the strings clients see in JSON.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "DeliveryMedium",
    "DeliveryOutcome",
    "DeliveryStatus",
    "NotificationPriority",
    "NotificationType",
    "OrderEventKind",
    "OrderStatus",
    "PaymentStatus",
    "PayoutStatus",
    "Role",
    "SkipReason",
    "WebhookOutcome",
]


class Role(StrEnum):
    """Who a token speaks for."""

    CUSTOMER = "customer"
    VENDOR = "vendor"
    ADMIN = "admin"
    SERVICE = "service"


class OrderStatus(StrEnum):
    """Where an order is on its way; transitions live in ``app.services.order_workflow``."""

    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    PROCESSING = "PROCESSING"
    SHIPPED = "SHIPPED"
    OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


class PaymentStatus(StrEnum):
    """The state of an order's payment, as the payment provider reports it."""

    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


class PayoutStatus(StrEnum):
    """The outcome of a payout to a vendor."""

    PROCESSED = "PROCESSED"
    FAILED = "FAILED"


class OrderEventKind(StrEnum):
    """What an entry of an order's tracking timeline records."""

    CREATED = "CREATED"
    STATUS_CHANGED = "STATUS_CHANGED"
    LOCATION = "LOCATION"
    ETA = "ETA"
    PAYMENT = "PAYMENT"
    NOTE = "NOTE"


class NotificationType(StrEnum):
    """What a notification is about (SPEC "Notifications")."""

    ORDER_CREATED = "ORDER_CREATED"
    ORDER_STATUS_UPDATED = "ORDER_STATUS_UPDATED"
    ORDER_CANCELLED = "ORDER_CANCELLED"
    ORDER_DELIVERED = "ORDER_DELIVERED"
    PAYMENT_SUCCEEDED = "PAYMENT_SUCCEEDED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    PAYMENT_REFUNDED = "PAYMENT_REFUNDED"
    PAYMENT_PROCESSING = "PAYMENT_PROCESSING"
    PAYOUT_PROCESSED = "PAYOUT_PROCESSED"
    PAYOUT_FAILED = "PAYOUT_FAILED"
    ACCOUNT_UPDATED = "ACCOUNT_UPDATED"


class NotificationPriority(StrEnum):
    """How loudly a notification asks for attention."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    URGENT = "URGENT"


class DeliveryMedium(StrEnum):
    """How a notification reaches its user: the bell (IN_APP) and beyond it.

    SPEC's JSON calls these a notification's ``channels``; in code they are media, so that
    "channel" means one thing only: a pub/sub channel such as ``user:u_1`` (docs/architecture.md).
    """

    IN_APP = "IN_APP"
    EMAIL = "EMAIL"
    SMS = "SMS"
    PUSH = "PUSH"


class DeliveryStatus(StrEnum):
    """The state of one notification's delivery on one medium."""

    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class SkipReason(StrEnum):
    """Why a delivery was SKIPPED rather than attempted."""

    PREFERENCE = "preference"  # the recipient turned this medium (or this type on it) off
    SEEN = "seen"  # an escalation whose notification was seen or read before it was due
    UNCONFIGURED = "unconfigured"  # this deployment has no sender for the medium


class DeliveryOutcome(StrEnum):
    """SPEC's outcome of a delivery (``GET /notifications/{id}/deliveries``), derived from status and skip reason."""

    SENT = "sent"
    FAILED = "failed"
    RETRYING = "retrying"
    SKIPPED_PREFERENCE = "skipped_preference"
    SKIPPED_SEEN = "skipped_seen"
    SKIPPED_UNCONFIGURED = "skipped_unconfigured"


class WebhookOutcome(StrEnum):
    """What a processed webhook event did."""

    APPLIED = "APPLIED"
    IGNORED = "IGNORED"
