"""Who may join which channel (SPEC "Real-time protocol"), checked against the database.

``user:{id}``: that user. ``order:{id}``: the order's customer, the vendor of its store, admins.
``store:{id}``: its vendor, admins. Anything else, or a channel that does not exist, is refused
without telling the two apart.
"""

from __future__ import annotations

from app.platform.auth import Identity
from models.catalog import Store
from models.enums import Role
from models.orders import Order

__all__ = ["may_join"]


async def may_join(identity: Identity, channel: str) -> bool:
    """Whether ``identity`` may subscribe to the (well-formed) ``channel``."""
    kind, _, target = channel.partition(":")
    if kind == "user":
        return target == identity.user_id
    if identity.role not in (Role.CUSTOMER, Role.VENDOR, Role.ADMIN):
        return False
    if kind == "order":
        row = await Order.select(Order.customer, Order.store.owner).where(Order.id == target).first()
        if row is None:
            return False
        if identity.role == Role.ADMIN:
            return True
        if identity.role == Role.CUSTOMER:
            return bool(row["customer_id"] == identity.user_id)
        # Piccolo keys selected columns by their database names (owner_id via the store_id join).
        return bool(row["store_id.owner_id"] == identity.user_id)
    if kind == "store":
        store = await Store.select(Store.owner).where(Store.id == target).first()
        if store is None:
            return False
        return identity.role == Role.ADMIN or (identity.role == Role.VENDOR and store["owner_id"] == identity.user_id)
    return False
