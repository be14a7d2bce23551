"""The order state machine of SPEC "Orders, catalog and tracking": one table that code, 409s and docs read.

:data:`TRANSITIONS` says which status may follow which; :data:`SET_BY` says who may move an order
into each status. Every write path (``PATCH /orders/{id}/status``, ``POST /orders/{id}/cancel``, the
payment webhook) asks :func:`check_transition`, and a refusal carries :func:`allowed_next` for the
same actor, so the 409's ``allowed`` is exactly what that caller could do instead.
``docs/orders.md`` embeds :func:`markdown_table`; a test keeps the two equal.
"""

from __future__ import annotations

from enum import StrEnum

from app.platform.errors import InvalidTransition
from models.enums import OrderStatus

__all__ = [
    "NORMAL_PATH",
    "SET_BY",
    "TERMINAL",
    "TRANSITIONS",
    "Actor",
    "allowed_next",
    "check_transition",
    "markdown_table",
]

S = OrderStatus


class Actor(StrEnum):
    """Who asks for a transition, as far as the state machine cares."""

    STAFF = "staff"
    """The store's vendor, an admin or a service, through ``PATCH /orders/{id}/status``."""
    CUSTOMER = "customer"
    """The order's customer, through ``POST /orders/{id}/cancel``."""
    PAYMENT = "payment"
    """The payment provider's webhook: a succeeded payment confirms, a refund refunds."""


TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.CONFIRMED, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.PROCESSING, S.CANCELLED, S.REFUNDED}),
    S.PROCESSING: frozenset({S.SHIPPED, S.CANCELLED, S.REFUNDED}),
    S.SHIPPED: frozenset({S.OUT_FOR_DELIVERY, S.REFUNDED}),
    S.OUT_FOR_DELIVERY: frozenset({S.DELIVERED, S.REFUNDED}),
    S.DELIVERED: frozenset({S.REFUNDED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}
"""Status -> the statuses that may follow it."""

SET_BY: dict[OrderStatus, frozenset[Actor]] = {
    S.PENDING: frozenset(),  # only where an order starts
    S.CONFIRMED: frozenset({Actor.STAFF, Actor.PAYMENT}),  # the vendor confirms cash on delivery
    S.PROCESSING: frozenset({Actor.STAFF}),
    S.SHIPPED: frozenset({Actor.STAFF}),
    S.OUT_FOR_DELIVERY: frozenset({Actor.STAFF}),
    S.DELIVERED: frozenset({Actor.STAFF}),
    S.CANCELLED: frozenset({Actor.STAFF, Actor.CUSTOMER}),
    S.REFUNDED: frozenset({Actor.PAYMENT}),  # only a refunded payment refunds an order
}
"""Status -> who may move an order into it."""

NORMAL_PATH: tuple[OrderStatus, ...] = (
    S.PENDING,
    S.CONFIRMED,
    S.PROCESSING,
    S.SHIPPED,
    S.OUT_FOR_DELIVERY,
    S.DELIVERED,
)
"""The way an order goes when all is well: the tracking ``timeline``."""

TERMINAL: frozenset[OrderStatus] = frozenset(status for status, following in TRANSITIONS.items() if not following)

_ORDER = {status: index for index, status in enumerate(OrderStatus)}


def allowed_next(current: OrderStatus, actor: Actor) -> list[OrderStatus]:
    """The statuses ``actor`` may move an order from ``current`` into, in the enum's (path) order."""
    return sorted((s for s in TRANSITIONS[current] if actor in SET_BY[s]), key=_ORDER.__getitem__)


def check_transition(current: OrderStatus, target: OrderStatus, actor: Actor) -> None:
    """Accept a transition or refuse it.

    Raises:
        InvalidTransition: (409) with the statuses ``actor`` may choose from instead.
    """
    if target in TRANSITIONS[current] and actor in SET_BY[target]:
        return
    allowed = [status.value for status in allowed_next(current, actor)]
    if target in TRANSITIONS[current]:
        why = f"{target.value} is not set by the {actor.value}"
        if target is S.REFUNDED:
            why += ": an order is refunded only when its payment is refunded"
    else:
        why = f"an order cannot go from {current.value} to {target.value}"
    raise InvalidTransition(why, allowed)


def markdown_table() -> str:
    """The state machine as the Markdown table in ``docs/orders.md``."""
    lines = ["| from | to | set by |", "|---|---|---|"]
    for current in OrderStatus:
        following = sorted(TRANSITIONS[current], key=_ORDER.__getitem__)
        if not following:
            lines.append(f"| `{current.value}` | (final) | |")
        for target in following:
            actors = ", ".join(sorted(actor.value for actor in SET_BY[target]))
            lines.append(f"| `{current.value}` | `{target.value}` | {actors} |")
    return "\n".join(lines)
