"""Piccolo tables, enums and migrations of the push server."""

from __future__ import annotations

from models.catalog import Product, Store, TokenRevocation, User
from models.enums import (
    DeliveryMedium,
    DeliveryOutcome,
    DeliveryStatus,
    NotificationPriority,
    NotificationType,
    OrderEventKind,
    OrderStatus,
    PaymentStatus,
    PayoutStatus,
    Role,
    SkipReason,
    WebhookOutcome,
)
from models.notifications import Notification, NotificationDelivery, NotificationPreferences, OutboxEvent
from models.orders import Order, OrderEvent, OrderItem, Payment, Payout, WebhookEvent

__all__ = [
    "ALL_TABLES",
    "DeliveryMedium",
    "DeliveryOutcome",
    "DeliveryStatus",
    "Notification",
    "NotificationDelivery",
    "NotificationPreferences",
    "NotificationPriority",
    "NotificationType",
    "Order",
    "OrderEvent",
    "OrderEventKind",
    "OrderItem",
    "OrderStatus",
    "OutboxEvent",
    "Payment",
    "PaymentStatus",
    "Payout",
    "PayoutStatus",
    "Product",
    "Role",
    "SkipReason",
    "Store",
    "TokenRevocation",
    "User",
    "WebhookEvent",
    "WebhookOutcome",
]

ALL_TABLES = (
    User,
    Store,
    Product,
    Order,
    OrderItem,
    OrderEvent,
    Payment,
    Payout,
    WebhookEvent,
    Notification,
    NotificationDelivery,
    NotificationPreferences,
    OutboxEvent,
    TokenRevocation,
)
