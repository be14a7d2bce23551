"""The fence around the uvicorn fast path (app/realtime/fast_path): which protocols serve, and why."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import connect

from app.platform.settings import Settings
from app.realtime.fast_path import (
    FRAMES_EXTENSION,
    STOCK_PROTOCOLS,
    SUPPORTED_UVICORN,
    feature_problem,
    uvicorn_protocols,
)
from app.server import uvicorn_options
from tests.conftest import FAST_PATH_OFF
from tests.live import serving

FAST = {
    "http": "app.realtime.fast_path.upgrade:UpgradeFirstProtocol",
    "ws": "app.realtime.fast_path.framed_ws:FramedWebSocketProtocol",
}
LOGGER = "app.realtime.fast_path"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def _dotted(version: tuple[int, int, int]) -> str:
    return ".".join(map(str, version))


def test_off_selects_stock_uvicorn_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """WS_FAST_PATH=0 is uvicorn's own HTTP protocol and websockets-sansio, and nothing is logged."""
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert uvicorn_protocols(False) == {"http": "auto", "ws": "websockets-sansio"}
    assert _warnings(caplog) == []


def test_a_supported_version_passing_the_check_gets_the_fast_path(caplog: pytest.LogCaptureFixture) -> None:
    """Inside the tested range, with the feature check passing, the fast path's classes are selected."""
    low, _stop = SUPPORTED_UVICORN
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert uvicorn_protocols(True, version=_dotted(low), check=lambda: None) == FAST
    assert _warnings(caplog) == []


@pytest.mark.parametrize("version", ["0.34.3", "0.44.0", "0.52.0", "0.56.0", "1.0.0", "unknown"])
def test_a_version_outside_the_range_falls_back_with_one_warning(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An untested uvicorn serves stock protocols, with one warning naming the version and the range."""
    low, stop = SUPPORTED_UVICORN

    def never() -> str | None:
        raise AssertionError("the feature check runs only for a supported version")

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        protocols = uvicorn_protocols(True, version=version, check=never)
    assert protocols == STOCK_PROTOCOLS
    (warning,) = _warnings(caplog)
    assert f"uvicorn {version}" in warning
    assert f">={_dotted(low)},<{_dotted(stop)}" in warning


def test_a_failing_feature_check_falls_back_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A supported version whose classes lack what the fast path uses serves stock, saying what is missing."""
    low, _stop = SUPPORTED_UVICORN
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        protocols = uvicorn_protocols(True, version=_dotted(low), check=lambda: "WebSocketsSansIOProtocol lacks send")
    assert protocols == STOCK_PROTOCOLS
    (warning,) = _warnings(caplog)
    assert f"uvicorn {_dotted(low)}" in warning
    assert "WebSocketsSansIOProtocol lacks send" in warning


def test_the_installed_uvicorn_passes_the_feature_check() -> None:
    """The uvicorn the suite runs on has every method and attribute the fast path relies on."""
    assert feature_problem() is None


def test_the_feature_check_names_a_missing_method(monkeypatch: pytest.MonkeyPatch) -> None:
    """A uvicorn whose websockets-sansio protocol lost a method the fast path calls fails the check."""
    monkeypatch.delattr(WebSocketsSansIOProtocol, "start_keepalive")
    problem = feature_problem()
    assert problem is not None
    assert "start_keepalive" in problem


def test_the_feature_check_names_missing_instance_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """A protocol that no longer sets an attribute the fast path reads (here ``close_timeout``) fails it."""
    original = WebSocketsSansIOProtocol.__init__

    def without_close_timeout(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        del self.close_timeout

    monkeypatch.setattr(WebSocketsSansIOProtocol, "__init__", without_close_timeout)
    problem = feature_problem()
    assert problem is not None
    assert "close_timeout" in problem


def test_uvicorn_options_follow_the_setting(make_settings: Any, sqlite_database: str) -> None:
    """``serve``'s options carry the fast path's classes, or stock uvicorn's with WS_FAST_PATH=0."""
    on = uvicorn_options(make_settings(DATABASE_URL=sqlite_database, WS_FAST_PATH="1"))
    off = uvicorn_options(make_settings(DATABASE_URL=sqlite_database, WS_FAST_PATH="0"))
    assert {key: on[key] for key in ("http", "ws")} == FAST
    assert {key: off[key] for key in ("http", "ws")} == STOCK_PROTOCOLS


async def test_the_servers_the_suite_starts_follow_ws_fast_path(sqlite_settings: Settings) -> None:
    """The suite's live servers offer push.frames to /ws exactly when WS_FAST_PATH is not 0 in the environment."""
    seen: list[dict[str, Any]] = []

    async def record_scope(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        seen.append(scope)
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    assert sqlite_settings.ws_fast_path is not FAST_PATH_OFF
    async with (
        serving(record_scope, sqlite_settings) as address,  # type: ignore[arg-type]
        connect(f"ws://{address}/ws", open_timeout=5) as ws,
    ):
        await ws.wait_closed()
    (scope,) = seen
    assert (FRAMES_EXTENSION in scope["extensions"]) is not FAST_PATH_OFF
