"""``GET /me``: who the bearer token speaks for (a convenience for front ends; not in SPEC's tables)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get

from app.platform.auth import Identity

__all__ = ["IdentityController", "Me"]


class Me(msgspec.Struct, frozen=True, rename="camel"):
    """The caller as the server sees them."""

    user_id: str
    role: str
    name: str | None
    email: str | None


class IdentityController(Controller):
    """The caller's identity, as verified from their token."""

    tags = ("identity",)

    @get("/me", summary="The caller's identity")
    async def me(self, request: Request[Identity, Any, Any]) -> Me:
        identity = request.user
        return Me(user_id=identity.user_id, role=identity.role.value, name=identity.name, email=identity.email)
