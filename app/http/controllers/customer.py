"""Customer insights REST (SPEC "Customer experience"): dashboard, analytics and preferences.

A customer sees their own insights; naming anyone else with ``?customerId=`` is a 403 (answered
without looking the id up, so nothing is learnt about other accounts). An admin must name the
customer with ``?customerId=`` (400 without it, 404 for an unknown user). Vendors and services: 403.
Answers are cached per customer (:class:`~app.services.insights.CustomerInsightsService`).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.openapi import ResponseSpec
from litestar.params import QueryParameter

from app.http.openapi import problems
from app.platform.auth import Identity, require_roles
from app.platform.errors import Forbidden, NotFound, ValidationFailed
from app.services.insights import DEFAULT_DAYS, MAX_DAYS, CustomerInsightsService
from app.services.insights_views import Analytics, Dashboard, Preferences
from models import User
from models.enums import Role

__all__ = ["CustomerController"]

_HEADERS = {"Cache-Control": "private, no-cache"}

CustomerId = Annotated[
    str | None, QueryParameter(name="customerId", description="admins: whose insights (required); customers: omit")
]


async def _customer(request: Request[Identity, Any, Any], customer_id: CustomerId = None) -> str:
    """Whose insights the caller asks for, after the access rules above (a dependency of every handler)."""
    identity = request.user
    if identity.role == Role.CUSTOMER:
        if customer_id is not None and customer_id != identity.user_id:
            raise Forbidden("customers see only their own insights; leave out customerId")
        return identity.user_id
    if not customer_id:
        raise ValidationFailed([("customerId", "required for admins: name the customer")], status=400)
    if not await User.exists().where(User.id == customer_id):
        raise NotFound(f"no user {customer_id!r}")
    return customer_id


def _json(body: bytes) -> Response[bytes]:
    return Response(body, media_type="application/json", headers=_HEADERS)


class CustomerController(Controller):
    """Insights into one customer's orders, computed in the database and cached until their orders change."""

    path = "/customer"
    tags = ("customer",)
    guards = [require_roles(Role.CUSTOMER, Role.ADMIN)]  # noqa: RUF012 (Litestar reads a list)
    dependencies = {"customer": Provide(_customer)}  # noqa: RUF012 (Litestar reads a dict)

    @get(
        "/dashboard",
        summary="Totals, last 12 months, favourite stores, recent activity, status breakdown",
        responses={200: ResponseSpec(Dashboard, description="The dashboard")},
        opt=problems(403, 404),
    )
    async def dashboard(
        self,
        customer: NamedDependency[str],
        insights: NamedDependency[CustomerInsightsService],
    ) -> Response[bytes]:
        return _json(await insights.dashboard_json(customer))

    @get(
        "/analytics",
        summary="Daily trends, weekday/hour spending patterns and category shares of the last N days",
        responses={200: ResponseSpec(Analytics, description="The analytics window")},
        opt=problems(403, 404),
    )
    async def analytics(
        self,
        customer: NamedDependency[str],
        insights: NamedDependency[CustomerInsightsService],
        days: Annotated[int, QueryParameter(ge=1, le=MAX_DAYS, description=f"1..{MAX_DAYS}")] = DEFAULT_DAYS,
    ) -> Response[bytes]:
        return _json(await insights.analytics_json(customer, days))

    @get(
        "/preferences",
        summary="Favourite products, preferred stores, spending pattern and loyalty insights",
        responses={200: ResponseSpec(Preferences, description="The preferences")},
        opt=problems(403, 404),
    )
    async def preferences(
        self,
        customer: NamedDependency[str],
        insights: NamedDependency[CustomerInsightsService],
    ) -> Response[bytes]:
        return _json(await insights.preferences_json(customer))
