"""The server survives PostgreSQL or Redis going away and coming back: 503s meanwhile, logged once, no restart.

The faults are real but never touch the shared servers: PostgreSQL is reached through a proxy the
test cuts (connections reset, new ones refused), or has the app's own backends terminated by
``pg_terminate_backend``; Redis is a server the test started and kills.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from app.main import create_app
from app.platform.settings import Settings
from tests.faults import TcpProxy, proxy_to
from tests.live import serving
from tests.redis_servers import RedisServer
from tests.services import POSTGRES_ADMIN_URL
from tests.test_relay_redis import _wait_ready
from tests.waiting import eventually

Headers = Callable[..., dict[str, str]]


async def _until_ok(http: httpx.AsyncClient, path: str, headers: dict[str, str], within: float = 30.0) -> None:
    """Poll until ``path`` answers 200 (the database is another process: no event to wait on)."""

    async def poll() -> None:
        while True:
            if (await http.get(path, headers=headers)).status_code == 200:
                return
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), within)


def _outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "app.platform.outages"]


@pytest.fixture
async def proxied_server(
    make_settings: Callable[..., Settings], postgres_database: str
) -> AsyncIterator[tuple[str, TcpProxy]]:
    """A live server whose PostgreSQL connections go through a proxy the test can cut."""
    url = urlsplit(postgres_database)
    with proxy_to(url.hostname or "127.0.0.1", url.port or 5432) as proxy:
        settings = make_settings(DATABASE_URL=url._replace(netloc=f"postgres@127.0.0.1:{proxy.port}").geturl())
        async with serving(create_app(settings), settings) as address:
            yield address, proxy


async def test_database_outage_is_503_logged_once_then_recovers(
    proxied_server: tuple[str, TcpProxy], auth: Headers, caplog: pytest.LogCaptureFixture
) -> None:
    """Writes and reads in flight and during an outage answer 201/200 or 503 with Retry-After, never 500;
    the outage is logged when it starts and when it ends, not per request; then everything answers again."""
    address, proxy = proxied_server
    caplog.set_level(logging.INFO)
    customer, service = auth("u_outage_pg"), auth("svc_outage", "service")
    body = {"userId": "u_outage_pg", "type": "ACCOUNT_UPDATED", "title": "t", "message": "m"}
    async with httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as http:
        assert (await http.get("/notifications/unread-count", headers=customer)).status_code == 200

        async def create() -> httpx.Response:
            return await http.post("/notifications", json=body, headers=service)

        in_flight = [asyncio.create_task(create()) for _ in range(50)]
        await asyncio.sleep(0)  # a loop iteration so the requests start before the cut (however many are in flight)
        await asyncio.to_thread(proxy.cut)
        during = [await create() for _ in range(20)]
        during += [await http.get("/notifications/unread-count", headers=customer) for _ in range(20)]
        during += await asyncio.gather(*in_flight)
        statuses = Counter(response.status_code for response in during)
        assert set(statuses) <= {200, 201, 503}, statuses
        assert statuses[503] >= 40
        for response in during:
            if response.status_code == 503:
                assert response.headers["retry-after"] == "1"
                assert response.headers["content-type"].startswith("application/problem+json")
        ready = await http.get("/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] != "ok"

        await asyncio.to_thread(proxy.restore)
        await _until_ok(http, "/notifications/unread-count", customer)
        assert (await create()).status_code == 201
        assert (await http.get("/ready")).status_code == 200

        await eventually(  # the probe runs every 0.5 s: poll its log line
            lambda: any("reachable again" in line for line in _outage_lines(caplog)),
            within=10,
            interval=0.05,
            what="the outage's end was logged",
        )
    lines = _outage_lines(caplog)
    assert len(lines) == 2, lines
    assert lines[0].startswith("database unavailable")
    assert lines[1].startswith("database reachable again") and "failures during the outage" in lines[1]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "no traceback per failed request"


async def test_terminated_database_connections_are_503_not_500(
    proxied_server: tuple[str, TcpProxy], postgres_database: str, auth: Headers
) -> None:
    """PostgreSQL terminating the app's connections mid-load (as at a shutdown) is a 503, never a 500."""
    address, _ = proxied_server
    database = urlsplit(postgres_database).path.lstrip("/")
    service = auth("svc_terminate", "service")
    body = {"userId": "u_terminate", "type": "ACCOUNT_UPDATED", "title": "t", "message": "m"}
    async with httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as http:
        assert (await http.get("/me", headers=auth("u_terminate"))).status_code == 200
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            statuses: Counter[int] = Counter()
            for _ in range(5):
                requests = [http.post("/notifications", json=body, headers=service) for _ in range(20)]
                terminate = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = $1 AND pid <> pg_backend_pid()",
                    database,
                )
                *responses, _ = await asyncio.gather(*requests, terminate)
                statuses.update(response.status_code for response in responses)
        finally:
            await admin.close()
        assert set(statuses) <= {201, 503}, statuses
        await _until_ok(http, "/ready", {})


async def test_redis_outage_keeps_rest_up_and_refuses_tickets_cleanly(
    make_settings: Callable[..., Settings], sqlite_database: str, own_redis: RedisServer, auth: Headers
) -> None:
    """With Redis down, REST keeps answering (the rate limiter fails open) and tickets are a 503, until it is back."""
    settings = make_settings(DATABASE_URL=sqlite_database, REDIS_URL=own_redis.url)
    app = create_app(settings)
    async with serving(app, settings) as address, httpx.AsyncClient(base_url=f"http://{address}") as http:
        headers = auth("u_outage_redis")
        assert (await http.post("/realtime/ticket", headers=headers)).status_code == 200
        own_redis.kill()
        await _wait_ready(address, ready=False)
        assert (await http.get("/notifications/unread-count", headers=headers)).status_code == 200
        refused = await http.post("/realtime/ticket", headers=headers)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        await asyncio.to_thread(own_redis.start)
        await _wait_ready(address, ready=True)
        assert (await http.post("/realtime/ticket", headers=headers)).status_code == 200
