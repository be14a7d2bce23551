"""Catalog REST: vendors create stores and products; anyone signed in lists a store's products."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from app.platform.auth import Identity, require_roles
from app.platform.database import Database
from app.services.catalog import ProductView, StoreView, create_product, create_store, list_products
from models.enums import Role

__all__ = ["CatalogController", "CreateProduct", "CreateStore"]

_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class CreateStore(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """Body of ``POST /stores``."""

    name: _Name


class CreateProduct(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """Body of ``POST /stores/{id}/products``."""

    name: _Name
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    price_cents: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)]
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")] = "USD"


class CatalogController(Controller):
    """Stores and products."""

    path = "/stores"
    tags = ("catalog",)

    @post("/", guards=[require_roles(Role.VENDOR)], summary="Create a store owned by the calling vendor")
    async def create_store(
        self, request: Request[Identity, Any, Any], database: NamedDependency[Database], data: JSONBody[CreateStore]
    ) -> StoreView:
        return await create_store(database, request.user.user_id, data.name)

    @post(
        "/{store_id:str}/products",
        guards=[require_roles(Role.VENDOR)],
        summary="Add a product to one of the caller's stores",
    )
    async def create_product(
        self,
        request: Request[Identity, Any, Any],
        database: NamedDependency[Database],
        store_id: FromPath[str],
        data: JSONBody[CreateProduct],
    ) -> ProductView:
        return await create_product(
            database,
            request.user.user_id,
            store_id,
            name=data.name,
            category=data.category,
            price_cents=data.price_cents,
            currency=data.currency,
        )

    @get("/{store_id:str}/products", summary="A store's products")
    async def products(self, store_id: FromPath[str]) -> list[ProductView]:
        return await list_products(store_id)
