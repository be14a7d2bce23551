"""Piccolo tables, enums and migrations of the push server."""

from __future__ import annotations

from models.catalog import Product, Store, TokenRevocation, User
from models.enums import (
    DeliveryMedium,
    DeliveryStatus,
    NotificationPriority,
    NotificationType,
    OrderEventKind,
    OrderStatus,
    PaymentStatus,
    PayoutStatus,
    Role,
    WebhookOutcome,
)
from models.notifications import Notification, NotificationDelivery, OutboxEvent
from models.orders import Order, OrderEvent, OrderItem, Payment, Payout, WebhookEvent

__all__ = [
    "ALL_TABLES",
    "DeliveryMedium",
    "DeliveryStatus",
    "Notification",
    "NotificationDelivery",
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
    OutboxEvent,
    TokenRevocation,
)
