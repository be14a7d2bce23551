"""The server API (SPEC "Server API") in process, on both engines with the in-process broker:
publish, broadcast, history, roles and bad input. Across processes on Redis: tests/test_server_api_redis.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from models.enums import Role

Headers = Callable[..., dict[str, str]]
ENDPOINTS = [
    ("POST", "/realtime/publish", {"channel": "order:o1", "type": "order.changed", "data": {}}),
    ("POST", "/realtime/broadcast", {"channels": ["order:o1"], "type": "order.changed", "data": {}}),
    ("GET", "/realtime/history?channel=order:o1", None),
    ("POST", "/realtime/disconnect", {"userId": "u_nobody"}),
    ("GET", "/realtime/presence?userId=u_nobody", None),
]


def _problem(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if field is not None:
        assert [error["field"] for error in response.json()["errors"]] == [field], response.text


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.VENDOR])
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
async def test_customers_and_vendors_are_refused(
    client: httpx.AsyncClient, auth: Headers, role: Role, method: str, path: str, body: Any
) -> None:
    """Every server API endpoint is for services and admins only: 403 for anyone else."""
    _problem(await client.request(method, path, json=body, headers=auth(f"u_{role}", role)), 403)


async def test_publish_gives_an_offset_that_history_and_resume_know(client: httpx.AsyncClient, auth: Headers) -> None:
    """A published event gets the next offset of its channel; history after the previous offset holds it."""
    service = auth("svc_pub", "service")
    first = await client.post(
        "/realtime/publish", json={"channel": "order:pub1", "type": "order.changed", "data": {"n": 1}}, headers=service
    )
    assert first.status_code == 200, first.text
    second = await client.post(
        "/realtime/publish", json={"channel": "order:pub1", "type": "order.changed", "data": {"n": 2}}, headers=service
    )
    one, two = first.json()["offset"], second.json()["offset"]
    assert one.split(":")[0] == two.split(":")[0] and int(two.split(":")[1]) == int(one.split(":")[1]) + 1
    page = (await client.get(f"/realtime/history?channel=order:pub1&since={one}", headers=service)).json()
    assert page["recovered"] is True and page["offset"] == two
    assert [(item["op"], item["offset"], item["type"], item["data"]) for item in page["items"]] == [
        ("event", two, "order.changed", {"n": 2})
    ]


async def test_one_idempotency_key_publishes_once_under_20_concurrent_retries(
    client: httpx.AsyncClient, auth: Headers
) -> None:
    """Twenty concurrent publishes with one key: every answer carries the same offset; history holds one event."""
    service = auth("svc_idem", "service")
    body = {"channel": "order:idem", "type": "order.changed", "data": {"n": 1}, "idempotencyKey": "retry-1"}
    responses = await asyncio.gather(*(client.post("/realtime/publish", json=body, headers=service) for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["offset"] for r in responses}) == 1
    page = (await client.get("/realtime/history?channel=order:idem", headers=service)).json()
    assert len(page["items"]) == 1
    other = await client.post("/realtime/publish", json={**body, "channel": "order:idem2"}, headers=service)
    assert other.json()["offset"] != responses[0].json()["offset"]  # keys are per channel


async def test_broadcast_gives_every_channel_its_own_offset(client: httpx.AsyncClient, auth: Headers) -> None:
    """One event to 1,000 channels: 1,000 offsets, each the first of its channel; 1,001 channels is a 400."""
    service = auth("svc_bcast", "service")
    channels = [f"store:b{i}" for i in range(1000)]
    body = {"channels": channels, "type": "store.announcement", "data": {"text": "sale"}}
    response = await client.post("/realtime/broadcast", json=body, headers=service)
    assert response.status_code == 200, response.text
    offsets = response.json()["offsets"]
    assert sorted(offsets) == sorted(channels) and all(offset.endswith(":1") for offset in offsets.values())
    page = (await client.get("/realtime/history?channel=store:b999", headers=service)).json()
    assert [item["data"] for item in page["items"]] == [{"text": "sale"}]
    _problem(
        await client.post("/realtime/broadcast", json={**body, "channels": [*channels, "store:x"]}, headers=service),
        400,
        "channels",
    )
    _problem(
        await client.post("/realtime/broadcast", json={**body, "channels": ["store:a", "store:a"]}, headers=service),
        400,
        "channels",
    )


async def test_history_windows_limits_and_epochs(client: httpx.AsyncClient, auth: Headers) -> None:
    """History returns the window after since, oldest first, at most limit; another epoch's offset is
    recovered: false with everything held; a limit above HISTORY_SIZE reads HISTORY_SIZE."""
    service = auth("svc_hist", "service")
    offsets = []
    for n in range(5):
        body = {"channel": "order:hist", "type": "order.changed", "data": {"n": n}}
        offsets.append((await client.post("/realtime/publish", json=body, headers=service)).json()["offset"])
    window = (
        await client.get(f"/realtime/history?channel=order:hist&since={offsets[1]}&limit=2", headers=service)
    ).json()
    assert [item["offset"] for item in window["items"]] == offsets[2:4]
    assert window["recovered"] is True and window["offset"] == offsets[-1]
    everything = (await client.get("/realtime/history?channel=order:hist&limit=100000", headers=service)).json()
    assert [item["offset"] for item in everything["items"]] == offsets
    stranger = (await client.get("/realtime/history?channel=order:hist&since=otherepoch:3", headers=service)).json()
    assert stranger["recovered"] is False and [item["offset"] for item in stranger["items"]] == offsets
    empty = (await client.get("/realtime/history?channel=order:nothing", headers=service)).json()
    assert empty["items"] == [] and empty["offset"].endswith(":0") and empty["recovered"] is True


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/realtime/publish", {"channel": "orders:1", "type": "a.b", "data": {}}, 400, "channel"),
        ("POST", "/realtime/publish", {"channel": "order:o1", "type": "Bad", "data": {}}, 400, "type"),
        ("POST", "/realtime/publish", {"channel": "order:o1", "type": "a.b", "data": [1]}, 400, "data"),
        ("POST", "/realtime/publish", {"channel": "order:o1", "type": "a.b", "data": {"x": "y" * 70_000}}, 413, None),
        ("POST", "/realtime/publish", {"channel": "order:o1", "type": "a.b"}, 400, "data"),
        ("POST", "/realtime/broadcast", {"channels": [], "type": "a.b", "data": {}}, 400, "channels"),
        ("POST", "/realtime/broadcast", {"channels": ["nope"], "type": "a.b", "data": {}}, 400, "channels[0]"),
        ("GET", "/realtime/history?channel=bad", None, 400, "channel"),
        ("GET", "/realtime/history?channel=order:o1&since=nope", None, 400, "since"),
        ("GET", "/realtime/history?channel=order:o1&limit=0", None, 400, "limit"),
        ("POST", "/realtime/disconnect", {"userId": "has space"}, 400, "userId"),
        ("POST", "/realtime/disconnect", {"userId": "u1", "revokeTokensIssuedBefore": "yesterday"}, 400,
         "revokeTokensIssuedBefore"),
        ("GET", "/realtime/presence", None, 400, "userId"),
    ],
)  # fmt: skip
async def test_bad_input_is_a_problem_naming_the_field(
    client: httpx.AsyncClient, auth: Headers, method: str, path: str, body: Any, status: int, field: str | None
) -> None:
    """Malformed channels, types, data, offsets, limits and users are 400 naming the field (413: an oversized event)."""
    _problem(await client.request(method, path, json=body, headers=auth("svc_bad", "service")), status, field)


async def test_disconnect_and_presence_in_one_process(client: httpx.AsyncClient, auth: Headers) -> None:
    """Without sockets a user is offline and a disconnect closes nothing; a revocation is stored and refuses
    the user's older tokens at once (401), while one issued after the cut-off works."""
    service, admin = auth("svc_dis", "service"), auth("a_dis", "admin")
    presence = (await client.get("/realtime/presence?userId=u_dis", headers=service)).json()
    assert presence == {"userId": "u_dis", "online": False, "connections": 0}
    old = auth("u_dis")
    assert (await client.get("/notifications", headers=old)).status_code == 200
    cutoff = "2999-01-01T00:00:00Z"
    answer = await client.post(
        "/realtime/disconnect", json={"userId": "u_dis", "revokeTokensIssuedBefore": cutoff}, headers=admin
    )
    assert answer.json() == {"disconnected": 0}
    _problem(await client.get("/notifications", headers=old), 401)
    _problem(await client.post("/realtime/ticket", headers=old), 401)


async def test_disconnect_closes_sockets_and_streams_on_the_in_process_broker(
    sqlite_settings: Any, token_for: Callable[..., str]
) -> None:
    """With the in-process broker a disconnect reaches this process's socket (4003) and SSE stream (a close event)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from app.main import create_app
    from tests.live import serving

    app = create_app(sqlite_settings)
    async with serving(app, sqlite_settings) as address, httpx.AsyncClient(base_url=f"http://{address}") as http:
        user = {"Authorization": f"Bearer {token_for('u_local_ban')}"}
        async with connect(f"ws://{address}/ws", additional_headers=user) as ws:
            await asyncio.wait_for(ws.recv(), 5)
            async with http.stream("GET", "/sse", headers=user) as stream:
                lines = stream.aiter_lines()
                assert (await asyncio.wait_for(anext(lines), 5)).startswith(":")
                service = {"Authorization": f"Bearer {token_for('svc_local', 'service')}"}
                answer = await http.post("/realtime/disconnect", json={"userId": "u_local_ban"}, headers=service)
                assert answer.json() == {"disconnected": 2}

                async def close_event() -> str:
                    async for line in lines:
                        if line.startswith("data: ") and '"code":4003' in line:
                            return line
                    return ""

                assert await asyncio.wait_for(close_event(), 5)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003
