"""The server survives PostgreSQL or Redis going away and coming back: clear 503s meanwhile, no restart needed."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from app.main import create_app
from app.settings import Settings
from tests.live import serving
from tests.services import REDIS_URL, unique_name
from tests.test_relay_redis import REDIS_START, _wait_ready

Headers = Callable[..., dict[str, str]]


def _postgres(action: str) -> None:
    version = next(Path("/etc/postgresql").iterdir()).name
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action], check=True)


async def _until_ok(http: httpx.AsyncClient, path: str, headers: dict[str, str], within: float = 30.0) -> None:
    """Poll until ``path`` answers 200 (the database is another process: no event to wait on)."""

    async def poll() -> None:
        while True:
            if (await http.get(path, headers=headers)).status_code == 200:
                return
            await asyncio.sleep(0.2)

    await asyncio.wait_for(poll(), within)


async def test_database_outage_is_503_then_recovers(
    make_settings: Callable[..., Settings], postgres_database: str, auth: Headers
) -> None:
    """With PostgreSQL stopped, requests answer 503 problem+json with Retry-After; once it is back, 200 again."""
    settings = make_settings(DATABASE_URL=postgres_database)
    app = create_app(settings)
    async with serving(app, settings) as address, httpx.AsyncClient(base_url=f"http://{address}") as http:
        headers = auth("u_outage_pg")
        assert (await http.get("/notifications/unread-count", headers=headers)).status_code == 200
        await asyncio.to_thread(_postgres, "stop")
        try:
            during = await http.get("/notifications/unread-count", headers=headers)
            assert during.status_code == 503
            assert during.headers["content-type"].startswith("application/problem+json")
            assert during.headers["retry-after"] == "1"
            ready = await http.get("/ready")
            assert ready.status_code == 503 and ready.json()["checks"]["database"] != "ok"
        finally:
            await asyncio.to_thread(_postgres, "start")
        await _until_ok(http, "/notifications/unread-count", headers)
        assert (await http.get("/ready")).status_code == 200


async def test_redis_outage_keeps_rest_up_and_refuses_tickets_cleanly(
    make_settings: Callable[..., Settings], sqlite_database: str, auth: Headers
) -> None:
    """With Redis down, REST keeps answering (the rate limiter fails open) and tickets are a 503, until it is back."""
    settings = make_settings(DATABASE_URL=sqlite_database, REDIS_URL=REDIS_URL, REDIS_PREFIX=unique_name("outage"))
    app = create_app(settings)
    async with serving(app, settings) as address, httpx.AsyncClient(base_url=f"http://{address}") as http:
        headers = auth("u_outage_redis")
        assert (await http.post("/realtime/ticket", headers=headers)).status_code == 200
        await asyncio.to_thread(subprocess.run, ["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False)
        try:
            await _wait_ready(address, ready=False)
            assert (await http.get("/notifications/unread-count", headers=headers)).status_code == 200
            refused = await http.post("/realtime/ticket", headers=headers)
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        finally:
            await asyncio.to_thread(subprocess.run, REDIS_START, check=True)
        await _wait_ready(address, ready=True)
        assert (await http.post("/realtime/ticket", headers=headers)).status_code == 200
