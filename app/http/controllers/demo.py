"""``/demo``: the live demo page, and its dev-only login that mints a token for a seeded demo user."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from app.platform.auth import mint_token
from app.platform.errors import NotFound
from app.platform.settings import Settings
from models.enums import Role

__all__ = ["DEMO_USERS", "DemoController"]

STATIC = Path(__file__).resolve().parents[2] / "static"
DEMO_USERS: dict[str, Role] = {"customer_demo": Role.CUSTOMER, "vendor_demo": Role.VENDOR, "admin_demo": Role.ADMIN}


class DemoLogin(msgspec.Struct, frozen=True, rename="camel"):
    """Body of ``POST /demo/login``."""

    user_id: Literal["customer_demo", "vendor_demo", "admin_demo"]


class DemoToken(msgspec.Struct, frozen=True, rename="camel"):
    """A short-lived token for a demo user."""

    token: str
    user_id: str
    role: str


class DemoController(Controller):
    """The demo page (always) and its login (dev only: 404 when APP_ENV=production)."""

    path = "/demo"
    tags = ("demo",)
    include_in_schema = False

    @get("/", media_type="text/html")
    async def page(self) -> Response[bytes]:
        return Response((STATIC / "demo.html").read_bytes(), media_type="text/html")

    @post("/login", status_code=200)
    async def login(self, data: JSONBody[DemoLogin], settings: NamedDependency[Settings]) -> DemoToken:
        if settings.is_production:
            raise NotFound("the demo login is off in production")
        role = DEMO_USERS[data.user_id]
        name = data.user_id.replace("_", " ").title()
        token = mint_token(settings, data.user_id, role, ttl_seconds=3600, name=name)
        return DemoToken(token=token, user_id=data.user_id, role=role.value)
