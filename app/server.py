"""uvicorn's configuration, derived from the settings: shared by ``python -m app serve`` and the tests."""

from __future__ import annotations

from typing import Any

from app.platform.settings import Settings
from app.realtime.fast_path import uvicorn_protocols

__all__ = ["GRACEFUL_SHUTDOWN_SECONDS", "uvicorn_options"]

GRACEFUL_SHUTDOWN_SECONDS = 10


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` / ``uvicorn.run`` (without the app)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        # The fast path (app/realtime/fast_path: a WebSocket upgrade parsed once, pre-framed messages written
        # straight to the transport) where WS_FAST_PATH is on and this uvicorn passes its checks, else stock
        # uvicorn ("auto" HTTP, websockets-sansio) with one warning saying why.
        **uvicorn_protocols(settings.ws_fast_path),
        "ws_max_size": settings.ws_max_frame,
        "ws_ping_interval": settings.ws_ping_interval,
        "ws_ping_timeout": settings.ws_ping_interval,
        # A zlib context per connection costs ~100 KiB and defeats encode-once; off unless asked for.
        "ws_per_message_deflate": settings.ws_per_message_deflate,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "lifespan": "on",
        "log_config": None,
        # uvicorn's own loggers at the app's level: at WARNING its per-socket "[accepted]" and
        # "connection open" INFO records are not even created (they were ~4% of a connect's CPU).
        "log_level": settings.log_level.lower(),
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
    }
