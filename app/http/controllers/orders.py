"""Orders REST: place, list, read, move through the state machine, cancel, and courier tracking pings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from app.http.openapi import problems
from app.platform.auth import Identity, require_roles
from app.platform.pagination import DEFAULT_LIMIT, Cursor, CursorCodec, Limit, Page
from app.platform.timefmt import utc_now
from app.services import orders
from app.services.order_views import Address, OrderView
from app.services.order_writes import OrderWriter
from app.services.tracking import Ping, PingRecorder
from models.enums import OrderStatus, Role

__all__ = ["OrderItemBody", "OrdersController", "PlaceOrder", "StatusBody", "TrackingBody"]

_Time = Annotated[datetime, msgspec.Meta(tz=True)]
_STAFF = require_roles(Role.VENDOR, Role.ADMIN, Role.SERVICE)


class OrderItemBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """One line of ``POST /orders``."""

    product_id: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100)]


class PlaceOrder(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """Body of ``POST /orders``."""

    store_id: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    items: Annotated[list[OrderItemBody], msgspec.Meta(min_length=1, max_length=50)]
    shipping_address: Address


class StatusBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Body of ``PATCH /orders/{id}/status``."""

    status: OrderStatus


class TrackingBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """Body of ``POST /orders/{id}/tracking``: ``at`` is when it was measured (default: now)."""

    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lng: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    at: _Time | None = None
    estimated_delivery_at: _Time | None = None
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] | None = None


class PingAccepted(msgspec.Struct, frozen=True, rename="camel"):
    """``current``: whether the ping became the order's current location (false: an older, late ping)."""

    order_id: str
    current: bool


class OrdersController(Controller):
    """Orders and their live changes."""

    path = "/orders"
    tags = ("orders",)

    @post(
        "/",
        guards=[require_roles(Role.CUSTOMER)],
        summary="Place an order (priced server-side)",
        opt=problems(422),
    )
    async def place(
        self,
        request: Request[Identity, Any, Any],
        order_writer: NamedDependency[OrderWriter],
        data: JSONBody[PlaceOrder],
    ) -> OrderView:
        lines = [orders.OrderLine(item.product_id, item.quantity) for item in data.items]
        return await orders.place_order(order_writer, request.user.user_id, data.store_id, lines, data.shipping_address)

    @get(
        "/",
        guards=[require_roles(Role.CUSTOMER, Role.VENDOR, Role.ADMIN)],
        summary="Orders the caller may see, newest first",
        opt=problems(404),
    )
    async def list_orders(
        self,
        request: Request[Identity, Any, Any],
        cursors: NamedDependency[CursorCodec],
        status: FromQuery[OrderStatus | None] = None,
        store_id: Annotated[str | None, QueryParameter(name="storeId")] = None,
        customer_id: Annotated[str | None, QueryParameter(name="customerId")] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[OrderView]:
        return await orders.list_orders(
            request.user,
            cursors,
            status=status,
            store_id=store_id,
            customer_id=customer_id,
            cursor=cursor,
            limit=limit,
        )

    @get(
        "/{order_id:str}",
        guards=[require_roles(Role.CUSTOMER, Role.VENDOR, Role.ADMIN)],
        summary="One order with items, payment status and shipping",
    )
    async def get_order(self, request: Request[Identity, Any, Any], order_id: FromPath[str]) -> OrderView:
        return await orders.get_order(request.user, order_id)

    @patch(
        "/{order_id:str}/status",
        guards=[_STAFF],
        summary="Move an order (409 with the allowed next states)",
        opt=problems(409),
    )
    async def set_status(
        self,
        request: Request[Identity, Any, Any],
        order_writer: NamedDependency[OrderWriter],
        order_id: FromPath[str],
        data: JSONBody[StatusBody],
    ) -> OrderView:
        return await orders.set_status(order_writer, request.user, order_id, data.status)

    @post(
        "/{order_id:str}/cancel",
        guards=[require_roles(Role.CUSTOMER)],
        status_code=200,
        summary="Cancel one's order while not yet shipped",
        opt=problems(409),
    )
    async def cancel(
        self, request: Request[Identity, Any, Any], order_writer: NamedDependency[OrderWriter], order_id: FromPath[str]
    ) -> OrderView:
        return await orders.cancel_order(order_writer, request.user, order_id)

    @post(
        "/{order_id:str}/tracking",
        guards=[_STAFF],
        status_code=200,
        summary="A courier's location ping",
        opt=problems(422),
    )
    async def track(
        self,
        request: Request[Identity, Any, Any],
        pings: NamedDependency[PingRecorder],
        order_id: FromPath[str],
        data: JSONBody[TrackingBody],
    ) -> PingAccepted:
        ping = Ping(
            lat=data.lat,
            lng=data.lng,
            at=(data.at or utc_now()),
            estimated_delivery_at=data.estimated_delivery_at,
            note=data.note,
        )
        current = await pings.record(request.user, order_id, ping)
        return PingAccepted(order_id=order_id, current=current)
