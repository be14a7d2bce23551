"""Deterministic demo notifications: each refers to a real seeded order, with the type and priority
SPEC's "Notifications implied" table gives for that order's state (see :mod:`app.ops.seed_data`)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

from app.ops.seed_data import DAY, PAYMENTS, STATUSES, Catalog, OrderLedger, Row, Scope, at_utc
from models.enums import NotificationType as N
from models.enums import OrderStatus as S
from models.enums import PaymentStatus

__all__ = ["notifications"]


PRIORITY = {
    N.ORDER_CREATED: "LOW",
    N.ORDER_STATUS_UPDATED: "MEDIUM",
    N.ORDER_DELIVERED: "HIGH",
    N.ORDER_CANCELLED: "MEDIUM",
    N.PAYMENT_PROCESSING: "LOW",
    N.PAYMENT_SUCCEEDED: "MEDIUM",
    N.PAYMENT_FAILED: "URGENT",
    N.PAYMENT_REFUNDED: "MEDIUM",
    N.PAYOUT_PROCESSED: "MEDIUM",
    N.PAYOUT_FAILED: "URGENT",
    N.ACCOUNT_UPDATED: "LOW",
}
PAYMENT_NOTICE = {
    PaymentStatus.PROCESSING: N.PAYMENT_PROCESSING,
    PaymentStatus.SUCCEEDED: N.PAYMENT_SUCCEEDED,
    PaymentStatus.FAILED: N.PAYMENT_FAILED,
    PaymentStatus.REFUNDED: N.PAYMENT_REFUNDED,
}


def _notice(rng: random.Random, catalog: Catalog, ledger: OrderLedger, n: int) -> tuple[str, N, str]:
    """Who hears what about order ``n``: a notification its state really implies (SPEC "Notifications")."""
    status, payment = STATUSES[ledger.status[n]], PAYMENTS[ledger.payment[n]]
    if rng.random() < 0.2:
        vendor = catalog.store_owners[ledger.store[n]]
        kind = N.ORDER_CANCELLED if status == S.CANCELLED else N.ORDER_CREATED
        kind = rng.choice((kind, kind, kind, N.PAYOUT_PROCESSED)) if rng.random() > 0.02 else N.PAYOUT_FAILED
        return vendor, kind, "MEDIUM" if kind == N.ORDER_CREATED else PRIORITY[kind]
    choices: list[N] = [N.ORDER_CREATED]
    choices += [N.ORDER_STATUS_UPDATED] if status not in (S.PENDING, S.CANCELLED) else []
    choices += [N.ORDER_DELIVERED] if status in (S.DELIVERED, S.REFUNDED) else []
    choices += [N.ORDER_CANCELLED] if status == S.CANCELLED else []
    choices += [PAYMENT_NOTICE[payment]] if payment in PAYMENT_NOTICE else []
    kind = rng.choice(choices)
    urgent = kind == N.ORDER_STATUS_UPDATED and status in (S.SHIPPED, S.OUT_FOR_DELIVERY)
    return catalog.customer_ids[ledger.customer[n]], kind, "HIGH" if urgent else PRIORITY[kind]


def notifications(catalog: Catalog, ledger: OrderLedger, scope: Scope, first: int, count: int) -> list[Row]:
    """Notifications ``first .. first + count - 1``, about recent orders mostly, already sent."""
    rng, tag = random.Random(f"{scope.seed}:notifications:{first}"), scope.tag
    end, rows = scope.until.timestamp(), []
    for n in range(first, first + count):
        if ledger.created:
            order = int(len(ledger.created) * (1.0 - rng.random() ** 2))  # ids grow with time: favour recent
            user_id, kind, priority = _notice(rng, catalog, ledger, order)
            at = min(ledger.created[order] + rng.uniform(0, 3 * DAY), end - 1)
            status = STATUSES[ledger.status[order]].value
            metadata: dict[str, Any] = {"orderId": f"ord_{tag}_{order:09d}", "status": status}
            title = kind.value.replace("_", " ").capitalize()
            message = f"Order ord_{tag}_{order:09d} from {catalog.store_names[ledger.store[order]]}: {status.lower()}"
        else:
            user_id, kind, priority = rng.choice(catalog.customer_ids), N.ACCOUNT_UPDATED, "LOW"
            at, metadata = end - rng.uniform(0, 30 * DAY), {"field": "email"}
            title, message = "Account updated", "Your account details were changed."
        channels: Sequence[str] = ("IN_APP", "EMAIL") if priority in ("HIGH", "URGENT") else ("IN_APP",)
        is_read = rng.random() < (0.95 if end - at > 14 * DAY else 0.4)
        sent = at_utc(at)
        content = (kind.value, title, message, json.dumps(list(channels)), priority, json.dumps(metadata), is_read)
        read_at = sent if is_read else None  # read implies seen (SPEC "The inbox"); unread ones stay unseen
        rows.append((f"ntf_{tag}_{n:09d}", user_id, *content, None, sent, sent, sent, read_at, read_at))
    return rows
