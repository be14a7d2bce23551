"""Customer insights over HTTP on both engines: access rules, ``days`` validation, caching and isolation."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from litestar import Litestar

from app.runtime import Runtime
from tests.test_insights import Shop

Headers = Callable[..., dict[str, str]]
ENDPOINTS = ("/customer/dashboard", "/customer/analytics", "/customer/preferences")


async def _shopper(shop: Shop, name: str, orders: int) -> str:
    """A customer with ``orders`` paid orders of 1000 cents from this week."""
    customer = await shop.user(name)
    store = await shop.store(f"store_{name}")
    product = await shop.product(f"thing_{name}", store, "Misc")
    for _ in range(orders):
        await shop.order(
            customer, store, "2026-01-01 10:00", "DELIVERED", "SUCCEEDED", 1000, [(product, "Misc", 1, 1000)]
        )
    return customer


@pytest.mark.parametrize("days", ["0", "366", "abc", "1.5", "-3", ""])
async def test_days_outside_1_to_365_is_400_naming_days(client: httpx.AsyncClient, auth: Headers, days: str) -> None:
    """days 0, 366, non-integers and empty answer 400 problem+json whose errors name ``days``."""
    response = await client.get("/customer/analytics", params={"days": days}, headers=auth("c_days"))
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "days" in {error["field"] for error in response.json()["errors"]}


async def test_days_default_and_bounds(client: httpx.AsyncClient, auth: Headers) -> None:
    """No days means 30; 1 and 365 are accepted."""
    for params, expected in (({}, 30), ({"days": "1"}, 1), ({"days": "365"}, 365)):
        response = await client.get("/customer/analytics", params=params, headers=auth("c_bounds"))
        assert response.status_code == 200 and response.json()["days"] == expected
        assert len(response.json()["orderTrends"]) == expected


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_roles(client: httpx.AsyncClient, auth: Headers, path: str) -> None:
    """Vendor, service, a customer naming another: 403; an admin needs customerId (400) of a known user (404)."""
    shop = Shop()
    customer = await _shopper(shop, "cus", 2)
    assert (await client.get(path, headers=auth("v_1", "vendor"))).status_code == 403
    assert (await client.get(path, headers=auth("s_1", "service"))).status_code == 403
    assert (await client.get(path, params={"customerId": "someone"}, headers=auth(customer))).status_code == 403
    missing = await client.get(path, headers=auth("a_1", "admin"))
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "customerId"
    unknown = await client.get(path, params={"customerId": shop.id("nobody")}, headers=auth("a_1", "admin"))
    assert unknown.status_code == 404
    own = await client.get(path, headers=auth(customer))
    same = await client.get(path, params={"customerId": customer}, headers=auth(customer))
    admin = await client.get(path, params={"customerId": customer}, headers=auth("a_1", "admin"))
    assert own.status_code == same.status_code == admin.status_code == 200
    assert own.json() == same.json() == admin.json() and own.json()["customerId"] == customer


async def test_dashboard_shape(client: httpx.AsyncClient, auth: Headers) -> None:
    """The dashboard answers every documented field in camelCase, with money beside its currency."""
    customer = await _shopper(Shop(), "cus", 3)
    body = (await client.get("/customer/dashboard", headers=auth(customer))).json()
    assert set(body) == {
        "customerId", "currency", "totalOrders", "paidOrders", "totalSpentCents", "averageOrderValueCents",
        "statusBreakdown", "monthlyTrends", "favoriteStores", "recentActivity", "byCurrency",
    }  # fmt: skip
    assert (body["totalOrders"], body["totalSpentCents"], body["currency"]) == (3, 3000, "USD")
    assert set(body["favoriteStores"][0]) == {
        "rank",
        "storeId",
        "name",
        "orders",
        "spentCents",
        "currency",
        "lastOrderAt",
    }


async def test_cache_serves_until_invalidated_and_never_leaks(
    client: httpx.AsyncClient, app: Litestar, auth: Headers
) -> None:
    """A cached answer stays until invalidate(customer); then a new order shows; another customer's never does."""
    runtime: Runtime = app.state["runtime"]
    shop = Shop()
    mine, theirs = await _shopper(shop, "mine", 2), await _shopper(shop, "theirs", 5)
    responses = {path: (await client.get(path, headers=auth(mine))).json() for path in ENDPOINTS}
    assert responses["/customer/dashboard"]["totalOrders"] == 2
    hits = runtime.insights_cache.hits
    store = await shop.store("late")
    product = await shop.product("late", store, "Late")
    await shop.order(mine, store, "2026-01-02 10:00", "DELIVERED", "SUCCEEDED", 500, [(product, "Late", 1, 500)])
    for path in ENDPOINTS:
        assert (await client.get(path, headers=auth(mine))).json() == responses[path]  # cached
    assert runtime.insights_cache.hits == hits + len(ENDPOINTS)
    await runtime.insights_cache.invalidate(mine)
    board = (await client.get("/customer/dashboard", headers=auth(mine))).json()
    assert (board["totalOrders"], board["totalSpentCents"]) == (3, 2500)
    preferences = (await client.get("/customer/preferences", headers=auth(mine))).json()
    assert preferences["insights"]["totalOrders"] == 3 and len(preferences["preferredStores"]) == 2
    other = (await client.get("/customer/dashboard", headers=auth(theirs))).json()
    assert (other["customerId"], other["totalOrders"], other["totalSpentCents"]) == (theirs, 5, 5000)
    assert {store["storeId"] for store in other["favoriteStores"]} == {shop.id("sto_store_theirs")}
