"""The server API across server processes on Redis and PostgreSQL: publish on one, receive and resume on the
other; disconnect (4003) and revocation everywhere, surviving restarts; presence summed over processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.realtime.presence import KEY_TTL_SECONDS, STALE_SECONDS
from tests.conftest import TEST_SECRET
from tests.scaling import recording, server_env, two_servers
from tests.services import REDIS_URL, reachable, unavailable, unique_name


def _token(user: str, role: str = "customer", issued: float | None = None) -> str:
    now = time.time()
    claims: dict[str, Any] = {"sub": user, "role": role, "exp": int(now) + 600}
    if issued is not None:
        claims["iat"] = int(issued)
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ws(base: str, query: str = "") -> str:
    return base.replace("http://", "ws://") + "/ws" + query


@pytest.fixture
def env(postgres_database: str) -> dict[str, str]:
    """Two processes' environment on the shared Redis (a prefix of this test's own) and the run's PostgreSQL."""
    if not reachable("127.0.0.1", 6379):
        unavailable("Redis is not reachable at 127.0.0.1:6379")
    return server_env(REDIS_URL, postgres_database, unique_name("api"))


async def test_published_on_one_process_is_received_and_resumed_on_another(env: dict[str, str]) -> None:
    """POST /realtime/publish on A reaches a socket on B with the offset A answered, and a socket that
    reconnects to A with since=<the offset before> gets it replayed."""
    service = _bearer(_token("svc_api", "service"))
    with two_servers(env) as (a, b):
        async with recording(_ws(b), _token("u_api")) as client:
            await client.wait(lambda r: any(m.get("op") == "subscribed" for m in r.messages))
            before = next(m["offset"] for m in client.messages if m.get("op") == "subscribed")
            async with httpx.AsyncClient(base_url=a) as http:
                body = {"channel": "user:u_api", "type": "promo.offer", "data": {"percent": 10}}
                published = (await http.post("/realtime/publish", json=body, headers=service)).json()["offset"]
            await client.wait(lambda r: bool(r.events("user:u_api")))
            (event,) = client.events("user:u_api")
            assert (event["offset"], event["type"], event["data"]) == (published, "promo.offer", {"percent": 10})
        async with recording(_ws(a, f"?since={before}"), _token("u_api")) as resumed:
            await resumed.wait(lambda r: bool(r.events("user:u_api")))
            assert [e["offset"] for e in resumed.events("user:u_api")] == [published]


async def _sse_close_event(base: str, token: str, opened: asyncio.Event) -> dict[str, Any]:
    """Open an SSE stream; answer the data of the ``close`` event that ends it."""
    async with (
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream("GET", "/sse", headers=_bearer(token)) as stream,
    ):
        assert stream.status_code == 200
        event = None
        async for line in stream.aiter_lines():
            opened.set()
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "close":
                import msgspec

                return dict(msgspec.json.decode(line.removeprefix("data: ")))
    raise AssertionError("the stream ended without a close event")


async def _closed_with(ws: Any) -> int | None:
    try:
        while True:
            await ws.recv()
    except ConnectionClosed:
        return ws.close_code


@pytest.fixture
async def sockets() -> AsyncIterator[list[Any]]:
    """Open WebSocket clients of a test, closed at its end."""
    opened: list[Any] = []
    yield opened
    for ws in opened:
        await ws.close()


async def test_disconnect_closes_everything_with_4003_and_revocation_holds_everywhere(
    env: dict[str, str], sockets: list[Any]
) -> None:
    """Sockets on two processes and an SSE stream are closed with 4003 within 1 s; the user's tokens issued
    before the cut-off are refused on REST, /ws, /sse and tickets on both processes, also after both
    restart; a token issued after the cut-off works."""
    now = time.time()
    old, new = _token("u_ban", issued=now - 120), _token("u_ban", issued=now - 30)
    cutoff = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60))
    admin = _bearer(_token("a_ban", "admin"))
    with two_servers(env) as (a, b):
        for base in (a, b):
            ws = await connect(_ws(base), additional_headers=_bearer(old))
            sockets.append(ws)
            await asyncio.wait_for(ws.recv(), 5)  # welcome: the socket is registered
        opened = asyncio.Event()
        sse = asyncio.create_task(_sse_close_event(b, old, opened))
        await asyncio.wait_for(opened.wait(), 5)
        async with httpx.AsyncClient(base_url=a) as http:
            await _until(lambda: _presence(http, admin, "u_ban"), 3)
            started = time.monotonic()
            answer = await http.post(
                "/realtime/disconnect", json={"userId": "u_ban", "revokeTokensIssuedBefore": cutoff}, headers=admin
            )
            assert answer.status_code == 200 and answer.json() == {"disconnected": 3}
            codes = await asyncio.wait_for(asyncio.gather(*(_closed_with(ws) for ws in sockets)), 5)
            closed_after = time.monotonic() - started
            assert codes == [4003, 4003] and closed_after < 1.0
            assert (await asyncio.wait_for(sse, 5))["code"] == 4003
        await _refused_everywhere((a, b), old)
        await _allowed(a, new)
    with two_servers(env) as (a, b):  # restarted: the revocation is in the database
        await _refused_everywhere((a, b), old)
        await _allowed(b, new)


async def _presence(http: httpx.AsyncClient, headers: dict[str, str], user: str) -> bool:
    answer = (await http.get(f"/realtime/presence?userId={user}", headers=headers)).json()
    return bool(answer["connections"] == 3)


async def _until(condition: Any, within: float) -> None:
    """Poll another process's state (presence is written in batches every 0.5 s)."""

    async def poll() -> None:
        while True:
            if await condition():
                return
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), within)


async def _refused_everywhere(bases: tuple[str, str], token: str) -> None:
    for base in bases:
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/notifications", headers=_bearer(token))).status_code == 401
            assert (await http.post("/realtime/ticket", headers=_bearer(token))).status_code == 401
            assert (await http.get("/sse", headers=_bearer(token))).status_code == 401
        async with connect(_ws(base), additional_headers=_bearer(token)) as ws:
            assert await asyncio.wait_for(_closed_with(ws), 5) == 4001


async def _allowed(base: str, token: str) -> None:
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/notifications", headers=_bearer(token))).status_code == 200
        ticket = (await http.post("/realtime/ticket", headers=_bearer(token))).json()["ticket"]
    async with connect(_ws(base, f"?ticket={ticket}")) as ws:
        assert '"op":"welcome"' in str(await asyncio.wait_for(ws.recv(), 5))


async def test_presence_is_summed_over_processes_and_forgets_dead_ones(env: dict[str, str]) -> None:
    """Connections on two processes count together; a process's field that stopped being refreshed (as after
    a SIGKILL) no longer counts, and every presence key expires within a minute unless refreshed."""
    service = _bearer(_token("svc_presence", "service"))
    prefix = env["REDIS_PREFIX"]
    with two_servers(env) as (a, b):
        async with (
            recording(_ws(a), _token("u_here")) as one,
            recording(_ws(b), _token("u_here")) as two,
            httpx.AsyncClient(base_url=a) as http,
        ):
            for client in (one, two):
                await client.wait(lambda r: any(m.get("op") == "welcome" for m in r.messages))

            async def both() -> bool:
                answer = (await http.get("/realtime/presence?userId=u_here", headers=service)).json()
                return bool(answer == {"userId": "u_here", "online": True, "connections": 2})

            await _until(both, 3)
            redis = aioredis.Redis.from_url(REDIS_URL)
            try:
                key = f"{{{prefix}:presence:u_here}}"
                assert 0 < await redis.ttl(key) <= KEY_TTL_SECONDS
                await redis.hset(key, "a-dead-process", f"5 {time.time() - STALE_SECONDS - 1:.0f}")
                assert await both()  # the stale field is ignored
            finally:
                await redis.aclose()
        async with httpx.AsyncClient(base_url=b) as http:

            async def gone() -> bool:
                answer = (await http.get("/realtime/presence?userId=u_here", headers=service)).json()
                return bool(answer["connections"] == 0 and answer["online"] is False)

            await _until(gone, 3)
