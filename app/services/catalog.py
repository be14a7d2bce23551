"""The catalog: vendors' stores and their products (SPEC "Orders, catalog and tracking")."""

from __future__ import annotations

import msgspec

from app.platform.database import Database
from app.platform.errors import NotFound
from app.platform.ids import new_id
from app.platform.timefmt import rfc3339, utc_now
from models.catalog import Product, Store

__all__ = ["ProductView", "StoreView", "create_product", "create_store", "list_products"]


class StoreView(msgspec.Struct, frozen=True, rename="camel"):
    """A store as REST shows it."""

    id: str
    owner_id: str
    name: str
    created_at: str


class ProductView(msgspec.Struct, frozen=True, rename="camel"):
    """A product as REST shows it."""

    id: str
    store_id: str
    name: str
    category: str
    price_cents: int
    currency: str
    created_at: str


async def create_store(database: Database, owner_id: str, name: str) -> StoreView:
    """A new store owned by the calling vendor."""
    store = Store(id=new_id("sto"), owner=owner_id, name=name, created_at=utc_now())
    async with database.write():
        await Store.insert(store)
    return StoreView(id=store.id, owner_id=owner_id, name=name, created_at=rfc3339(store.created_at) or "")


async def _owned(store_id: str, vendor_id: str) -> None:
    owner = await Store.select(Store.owner).where(Store.id == store_id).first()
    if owner is None or owner["owner_id"] != vendor_id:
        raise NotFound(f"no store {store_id}")


async def create_product(
    database: Database, vendor_id: str, store_id: str, *, name: str, category: str, price_cents: int, currency: str
) -> ProductView:
    """A new product of one of the vendor's stores.

    Raises:
        NotFound: the store is absent or another vendor's.
    """
    await _owned(store_id, vendor_id)
    product = Product(
        id=new_id("prd"),
        store=store_id,
        name=name,
        category=category,
        price_cents=price_cents,
        currency=currency,
        created_at=utc_now(),
    )
    async with database.write():
        await Product.insert(product)
    return ProductView(
        id=product.id,
        store_id=store_id,
        name=name,
        category=category,
        price_cents=price_cents,
        currency=currency,
        created_at=rfc3339(product.created_at) or "",
    )


async def list_products(store_id: str) -> list[ProductView]:
    """A store's products, oldest first (what a customer orders from).

    Raises:
        NotFound: no such store.
    """
    if not await Store.exists().where(Store.id == store_id):
        raise NotFound(f"no store {store_id}")
    rows = await Product.select().where(Product.store == store_id).order_by(Product.created_at).order_by(Product.id)
    return [
        ProductView(
            id=row["id"],
            store_id=store_id,
            name=row["name"],
            category=row["category"],
            price_cents=row["price_cents"],
            currency=row["currency"],
            created_at=rfc3339(row["created_at"]) or "",
        )
        for row in rows
    ]
