"""Fixtures and helpers shared by the /ws test modules: a live server with small limits, its runtime, a welcome.

A plugin of tests/conftest.py, so its fixtures reach every module without imports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from litestar import Litestar

from app.main import create_app
from app.platform.settings import Settings
from app.runtime import Runtime
from tests.live import receive_json, serving

__all__ = ["bearer", "runtime_of", "server", "welcome", "ws_app", "ws_settings"]


@pytest.fixture
def ws_settings(make_settings: Callable[..., Settings], sqlite_database: str) -> Settings:
    """Settings with small limits so tests can reach them quickly."""
    return make_settings(
        DATABASE_URL=sqlite_database,
        WS_RATE="20",
        WS_MAX_FRAME="4096",
        ALLOWED_ORIGINS="https://shop.example.com",
    )


@pytest.fixture
def ws_app(ws_settings: Settings) -> Litestar:
    return create_app(ws_settings)


@pytest.fixture
async def server(ws_app: Litestar, ws_settings: Settings) -> AsyncIterator[str]:
    """host:port of a live server."""
    async with serving(ws_app, ws_settings) as address:
        yield address


def runtime_of(app: Litestar) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def welcome(ws: Any, user_id: str) -> str:
    """Read welcome and the user channel's subscribed; answers the user channel's offset."""
    welcome = await receive_json(ws)
    assert welcome == {"op": "welcome", "userId": user_id, "channels": [f"user:{user_id}"]}
    subscribed = await receive_json(ws)
    assert subscribed["op"] == "subscribed" and subscribed["channel"] == f"user:{user_id}"
    assert subscribed["recovered"] is True
    return str(subscribed["offset"])
