"""The uvicorn fast path, fenced: our protocol classes where this uvicorn is one they were tested on, else stock.

Two modules here re-implement uvicorn internals: ``upgrade.py`` (``UpgradeFirstProtocol``, an HTTP
protocol that hands a socket whose first packet is a WebSocket upgrade straight to the WebSocket
protocol) and ``framed_ws.py`` (``FramedWebSocketProtocol``, uvicorn's websockets-sansio protocol
plus the ``push.frames`` scope extension that writes pre-framed messages to the transport). They
are only ever named through :func:`uvicorn_protocols`, which checks before it picks them:

1. ``WS_FAST_PATH`` is on (the default);
2. the installed uvicorn is in ``SUPPORTED_UVICORN``, the versions the real-time tests passed on;
3. the attributes the two modules use exist with the shape they expect (``feature_problem``).

When 2 or 3 fails the server starts on stock uvicorn (``http="auto"``, ``ws="websockets-sansio"``)
with one warning naming the version and the reason; ``/ws`` then sends through ASGI ``send``
because its scope lacks ``FRAMES_EXTENSION``. Nothing else imports the two modules: a uvicorn
whose internals moved cannot break the import of ``app``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

__all__ = ["FRAMES_EXTENSION", "STOCK_PROTOCOLS", "SUPPORTED_UVICORN", "feature_problem", "uvicorn_protocols"]

logger = logging.getLogger(__name__)

FRAMES_EXTENSION = "push.frames"
"""The scope extension of ``framed_ws.FramedWebSocketProtocol``: a ``channels.FrameSink``."""

# [lowest, first unsupported): the versions the real-time test modules passed on. uvicorn's websockets-sansio
# protocol appeared in 0.35.0 but gained what the fast path uses only later: keepalive pings (start_keepalive)
# in 0.44.0, asgi_version in 0.50.0, disconnected, close_timer and close_timeout in 0.52.1. 0.55.0 is the
# newest tested. A later release may move what the fast path relies on, so it runs on stock uvicorn until
# tested here (docs/architecture.md, "The uvicorn fast path, fenced").
SUPPORTED_UVICORN: tuple[tuple[int, int, int], tuple[int, int, int]] = ((0, 52, 1), (0, 56, 0))

STOCK_PROTOCOLS: dict[str, str] = {"http": "auto", "ws": "websockets-sansio"}
_FAST_PROTOCOLS: dict[str, str] = {
    "http": "app.realtime.fast_path.upgrade:UpgradeFirstProtocol",
    "ws": "app.realtime.fast_path.framed_ws:FramedWebSocketProtocol",
}
# What framed_ws.py and upgrade.py read or override on uvicorn's classes (methods) and instances (state).
_PROTOCOL_METHODS = ("handle_connect", "send", "run_asgi", "on_task_complete", "data_received", "start_keepalive")
_PROTOCOL_STATE = (
    "conn", "queue", "writable", "transport", "config", "loop", "logger", "tasks", "app_state", "root_path",
    "asgi_version", "scheme", "server", "client", "default_headers", "handshake_initiated", "handshake_complete",
    "close_sent", "disconnected", "initial_response", "read_paused", "close_timer", "close_timeout",
)  # fmt: skip
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


def _parse_version(version: str) -> tuple[int, int, int] | None:
    match = _VERSION.match(version)
    return None if match is None else (int(match[1]), int(match[2]), int(match[3]))


def _installed_version() -> str:
    import uvicorn

    return str(getattr(uvicorn, "__version__", "unknown"))


def feature_problem() -> str | None:
    """Why this uvicorn cannot run the fast path's classes (None: it can). Imports them, never raises."""
    try:
        from uvicorn.config import Config
        from uvicorn.server import ServerState

        from app.realtime.fast_path.framed_ws import FramedWebSocketProtocol
        from app.realtime.fast_path.upgrade import UpgradeFirstProtocol
    except ImportError as exc:
        return f"cannot import what the fast path builds on ({exc})"
    parent = FramedWebSocketProtocol.__mro__[1]
    missing = [name for name in _PROTOCOL_METHODS if not callable(getattr(parent, name, None))]
    if missing:
        return f"{parent.__qualname__} lacks {', '.join(missing)}"
    # Instance state only exists once built: build uvicorn's protocol on a throwaway config and loop.
    loop = asyncio.new_event_loop()
    try:
        config = Config(app=_no_app, ws="websockets-sansio", http="auto", log_config=None, proxy_headers=False)
        server_state = ServerState()
        protocol = parent(config=config, server_state=server_state, app_state={}, _loop=loop)
        if not hasattr(server_state, "connections") or not hasattr(config, "ws_protocol_class"):
            return "uvicorn's ServerState or Config lacks connections or ws_protocol_class"
    except Exception as exc:  # any failure of uvicorn's own constructor means its shape changed
        return f"building {parent.__qualname__} failed ({type(exc).__name__}: {exc})"
    finally:
        loop.close()
    missing = [name for name in _PROTOCOL_STATE if not hasattr(protocol, name)]
    if missing:
        return f"{parent.__qualname__} instances lack {', '.join(missing)}"
    if not callable(getattr(UpgradeFirstProtocol, "data_received", None)):  # pragma: no cover - our own class
        return "UpgradeFirstProtocol is incomplete"
    return None


async def _no_app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never served
    return None


def uvicorn_protocols(
    enabled: bool,
    *,
    version: str | None = None,
    check: Callable[[], str | None] = feature_problem,
) -> dict[str, str]:
    """uvicorn's ``http`` and ``ws`` options: the fast path's classes, or stock uvicorn's.

    Args:
        enabled: ``WS_FAST_PATH``; false selects stock uvicorn without a word.
        version: the uvicorn version to judge (default: the installed one); tests inject theirs.
        check: the feature check (default :func:`feature_problem`); run only for a supported version.

    Returns:
        ``{"http": ..., "ws": ...}``. On a fallback one warning names the uvicorn version and why.
    """
    if not enabled:
        return dict(STOCK_PROTOCOLS)
    version = _installed_version() if version is None else version
    parsed = _parse_version(version)
    low, stop = SUPPORTED_UVICORN
    reason: str | None
    if parsed is None or not low <= parsed < stop:
        reason = f"outside the tested range >={_dotted(low)},<{_dotted(stop)}"
    else:
        reason = check()
    if reason is None:
        return dict(_FAST_PROTOCOLS)
    logger.warning("uvicorn fast path off, serving with stock uvicorn: uvicorn %s: %s", version, reason)
    return dict(STOCK_PROTOCOLS)


def _dotted(version: tuple[int, int, int]) -> str:
    return ".".join(map(str, version))
