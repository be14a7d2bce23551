"""Shared fixtures: a fresh database per engine, settings, the app and clients.

Each test run creates its own PostgreSQL database (dropped at the end) and its own SQLite file;
the same tests run on both through the ``database_url`` fixture.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar

from app.main import create_app
from app.ops.migrations import apply_migrations
from app.platform.auth import mint_token
from app.platform.settings import Settings, load_settings
from models.enums import Role
from tests.asgi import lifespan_running
from tests.live import serving
from tests.redis_servers import RedisServer, redis_server
from tests.services import POSTGRES_ADMIN_URL, postgres_url, reachable, unavailable, unique_name

TEST_SECRET = "test-secret-for-the-suite-0123456789"
# CI runs the real-time modules a second time with WS_FAST_PATH=0 (.ci/run): every server the suite starts,
# in process (these settings) or as a subprocess (which inherits the environment), is then stock uvicorn.
FAST_PATH_ENV = {"WS_FAST_PATH": os.environ["WS_FAST_PATH"]} if os.environ.get("WS_FAST_PATH") else {}
FAST_PATH_OFF = FAST_PATH_ENV.get("WS_FAST_PATH", "").strip().lower() in {"0", "false", "no", "off"}

pytest_plugins = ["tests.delivery_support", "tests.redis_topologies", "tests.ws_support"]
CHROMIUM = "/usr/bin/chromium"
LAUNCH_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With WS_FAST_PATH=0 the tests of the fast path's own classes and answers are skipped, saying why."""
    if not FAST_PATH_OFF:
        return
    skip = pytest.mark.skip(reason="checks the uvicorn fast path itself; WS_FAST_PATH=0 serves stock uvicorn")
    for item in items:
        if item.get_closest_marker("fast_path") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database created for this test run and dropped after it."""
    if not reachable("127.0.0.1", 5432):
        unavailable("PostgreSQL is not reachable at 127.0.0.1:5432")
    name = unique_name("push_test")

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = postgres_url(name)
    asyncio.run(apply_migrations(url))
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file for this test run."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'push.sqlite3'}"
    asyncio.run(apply_migrations(url))
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The URL of a migrated database, once per engine."""
    fixture = "sqlite_database" if request.param == "sqlite" else "postgres_database"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Build settings from an environment mapping, with the suite's secrets unless overridden."""

    def build(**env: str) -> Settings:
        base = {"JWT_SECRET": TEST_SECRET, "WEBHOOK_SECRET": TEST_SECRET, "APP_ENV": "test", **FAST_PATH_ENV}
        return load_settings({**base, **env}, secrets_file=tmp_path / "dev-secrets.json")

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    """Settings on the parametrized database, in-process broker."""
    return make_settings(DATABASE_URL=database_url)


@pytest.fixture
def sqlite_settings(make_settings: Callable[..., Settings], sqlite_database: str) -> Settings:
    """Default settings on the suite's SQLite file, in-process broker."""
    return make_settings(DATABASE_URL=sqlite_database)


@pytest.fixture
async def sqlite_server(sqlite_settings: Settings) -> AsyncIterator[str]:
    """host:port of a real uvicorn server (``serve``'s options) running the app on ``sqlite_settings``."""
    async with serving(create_app(sqlite_settings), sqlite_settings) as address:
        yield address


@pytest.fixture
def app(settings: Settings) -> Litestar:
    """The app built from ``settings``."""
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in process, its lifespan run in the test's own event loop.

    Litestar's AsyncTestClient runs the lifespan on a portal thread's loop, which would leave the
    asyncpg pool on another loop than the requests.
    """
    async with lifespan_running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as test_client:
            yield test_client


@pytest.fixture
def token_for(make_settings: Callable[..., Settings]) -> Callable[..., str]:
    """Mint a token for a user id and role with the suite's secret."""

    def mint(user_id: str, role: Role | str = Role.CUSTOMER, exp_offset: int = 3600, **claims: Any) -> str:
        if exp_offset != 3600:
            import jwt

            payload = {"sub": user_id, "role": str(role), "exp": int(time.time()) + exp_offset}
            return jwt.encode(payload, TEST_SECRET, algorithm="HS256")
        return mint_token(make_settings(), user_id, Role(role), **claims)

    return mint


@pytest.fixture
def settings_token(make_settings: Callable[..., Settings]) -> Callable[..., str]:
    """Mint a token with the suite's secret, ``exp_offset`` seconds from now (negative: expired)."""
    import jwt

    def mint(user_id: str, role: str = "customer", exp_offset: int = 3600) -> str:
        claims = {"sub": user_id, "role": role, "exp": int(time.time()) + exp_offset}
        return jwt.encode(claims, TEST_SECRET, algorithm="HS256")

    return mint


@pytest.fixture
def auth(token_for: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """Authorization headers for a user id and role."""

    def headers(user_id: str, role: Role | str = Role.CUSTOMER) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(user_id, role)}"}

    return headers


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis server of this test's own, which it may kill, pause and restart (never the shared one)."""
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium driven by Playwright (its own browser download does not work offline)."""
    if shutil.which(CHROMIUM) is None:
        unavailable("Chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_FLAGS)
        yield instance
        await instance.close()
