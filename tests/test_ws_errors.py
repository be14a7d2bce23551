"""/ws client messages that are refused: each answered with an error (its ref when it had one), the socket kept."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from websockets.asyncio.client import connect

from tests.live import receive_json
from tests.ws_support import bearer, welcome


async def test_errors_keep_the_connection_open(server: str, token_for: Callable[..., str]) -> None:
    """Malformed input, bad channels and offsets, and forbidden channels answer errors; the socket stays open."""
    async with connect(f"ws://{server}/ws", additional_headers=bearer(token_for("u_err"))) as ws:
        await welcome(ws, "u_err")
        cases = [
            ("not json", "bad_request", None),
            ('{"op": "teleport"}', "bad_request", None),
            ('{"op": "subscribe", "channel": "nonsense", "ref": 1}', "bad_request", 1),
            ('{"op": "subscribe", "channel": "user:u_err", "since": "x:y", "ref": 2}', "bad_request", 2),
            ('{"op": "subscribe", "channel": "user:someone_else", "ref": 3}', "forbidden", 3),
            ('{"op": "subscribe", "channel": "order:ord_missing", "ref": 4}', "forbidden", 4),
            ('{"op": "unsubscribe", "channel": "order:ord_missing", "ref": 5}', "not_found", 5),
        ]
        for frame, code, ref in cases:
            await ws.send(frame)
            error = await receive_json(ws)
            assert error["op"] == "error" and error["code"] == code, (frame, error)
            assert error.get("ref") == ref
            assert isinstance(error["message"], str) and error["message"]
        await ws.send('{"op": "ping", "ref": 9}')
        assert await receive_json(ws) == {"op": "pong", "ref": 9}


@pytest.mark.parametrize(
    ("frame", "ref"),
    [
        ('{"op": "teleport", "ref": 7}', 7),  # unknown op
        ('{"ref": "r-8"}', "r-8"),  # no op at all
        ('{"op": "subscribe", "ref": 9}', 9),  # a known op missing its channel
        ('{"op": "subscribe", "channel": 5, "ref": 10}', 10),  # a field of the wrong type
        ('{"op": "ping", "ref": 11, "x": ' + "[" * 1900 + "]" * 1900 + "}", 11),  # too deep
        ('{"op": "teleport", "ref": {"no": 1}}', None),  # a ref that is no ref is not echoed
        ('[{"op": "ping", "ref": 12}]', None),  # not an object: no ref to read
    ],
)
async def test_an_undecodable_frame_is_answered_with_its_own_ref(
    server: str, token_for: Callable[..., str], frame: str, ref: object
) -> None:
    """Whenever a refused frame is a JSON object with a valid ``ref``, the bad_request error carries it."""
    async with connect(f"ws://{server}/ws", additional_headers=bearer(token_for("u_ref"))) as ws:
        await welcome(ws, "u_ref")
        await ws.send(frame)
        error = await receive_json(ws)
        assert error["op"] == "error" and error["code"] == "bad_request", error
        assert error.get("ref") == ref


async def test_deeply_nested_frame_is_a_bad_request_and_the_socket_stays_open(
    server: str, token_for: Callable[..., str]
) -> None:
    """A frame nested 1,900 levels deep (under WS_MAX_FRAME) answers bad_request instead of closing with 4500."""
    async with connect(f"ws://{server}/ws", additional_headers=bearer(token_for("u_deep"))) as ws:
        await welcome(ws, "u_deep")
        frame = '{"op": "ping", "x": ' + "[" * 1900 + "]" * 1900 + "}"
        assert len(frame) < 4096
        await ws.send(frame)
        error = await receive_json(ws)
        assert error["op"] == "error" and error["code"] == "bad_request"
        assert "nested" in error["message"]
        await ws.send('{"op": "ping", "ref": 1}')
        assert await receive_json(ws) == {"op": "pong", "ref": 1}
