"""The customer's tracking view of one order (SPEC "Customer experience"): REST fallback of the live map."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import FromPath, QueryParameter

from app.platform.auth import Identity, require_roles
from app.services.tracking_view import TrackingView, tracking_view
from models.enums import Role

__all__ = ["TrackingController"]


class TrackingController(Controller):
    """``GET /customer/orders/{orderId}/tracking``: the customer's own; an admin names the customer."""

    path = "/customer/orders"
    tags = ("customer",)

    @get(
        "/{order_id:str}/tracking",
        guards=[require_roles(Role.CUSTOMER, Role.ADMIN)],
        summary="Status, payment, current location, ETA, the logged timeline and the normal path's times",
    )
    async def tracking(
        self,
        request: Request[Identity, Any, Any],
        order_id: FromPath[str],
        customer_id: Annotated[str | None, QueryParameter(name="customerId")] = None,
    ) -> TrackingView:
        return await tracking_view(request.user, order_id, customer_id)
