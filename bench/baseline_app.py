"""The baseline: the same relay done the idiomatic Litestar way, with ``ChannelsPlugin`` on Redis pub/sub.

``python -m bench.baseline_app`` serves it with uvicorn's stock protocols (its HTTP protocol and
websockets-sansio: what a Litestar user runs) and otherwise the settings of ``python -m app serve``
(``app.server.uvicorn_options``: per-message-deflate off, same frame limit and pings, log level),
from the same environment (PORT, REDIS_URL, REDIS_PREFIX, JWT_SECRET). Our own protocol classes
(``app/realtime/fast_path/upgrade.py``, ``app/realtime/fast_path/framed_ws.py``) are part of what is measured,
so the baseline does not get them. ``/ws`` authenticates the
same bearer token with PyJWT after accept, sends ``welcome`` and a ``subscribed`` ack, and relays
every payload of its user's channel as it comes (the producer's envelope, undecoded).

The plugin's Redis backend SUBSCRIBEs to the plugin's channel names as they are (its key prefix is
only used by the stream backend), so the channel ``<REDIS_PREFIX>:user:<sub>`` is the very Redis
channel our server listens on: one bare ``PUBLISH <prefix>:user:<id>`` feeds either server.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jwt
import msgspec
from litestar import Litestar, WebSocket, get, websocket
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from redis.asyncio import Redis

__all__ = ["create_app"]

_encode = msgspec.json.encode
logger = logging.getLogger("bench.baseline")


def create_app() -> Litestar:
    """The baseline app, configured from the environment."""
    secret = os.environ["JWT_SECRET"]
    prefix = os.environ.get("REDIS_PREFIX", "push")
    redis = Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    plugin = ChannelsPlugin(backend=RedisChannelsPubSubBackend(redis=redis), arbitrary_channels_allowed=True)

    @get("/ready", sync_to_thread=False)
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    @websocket("/ws")
    async def ws(socket: WebSocket[Any, Any, Any], channels: ChannelsPlugin) -> None:
        await socket.accept()
        header = socket.headers.get("authorization", "")
        try:
            if not header.lower().startswith("bearer "):
                raise jwt.InvalidTokenError("missing bearer token")
            claims = jwt.decode(header[7:], secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
        except jwt.PyJWTError as exc:
            await socket.close(code=4001, reason=str(exc)[:120])
            return
        user = str(claims["sub"])
        channel = f"user:{user}"
        await socket.send_text(_encode({"op": "welcome", "userId": user, "channels": [channel]}))
        try:
            async with channels.start_subscription([f"{prefix}:{channel}"]) as subscriber:
                await socket.send_text(_encode({"op": "subscribed", "channel": channel, "offset": None}))
                async with subscriber.run_in_background(socket.send_text, join=False):
                    while (await socket.receive())["type"] != "websocket.disconnect":
                        continue
        except Exception:
            logger.exception("baseline socket failed")  # Litestar closes with 4500 without logging
            raise

    return Litestar(route_handlers=[ready, ws], plugins=[plugin])


def main() -> None:
    import uvicorn

    from app.platform.settings import load_settings
    from app.server import uvicorn_options

    options = {**uvicorn_options(load_settings()), "http": "auto", "ws": "websockets-sansio"}
    uvicorn.run("bench.baseline_app:create_app", factory=True, **options)


if __name__ == "__main__":
    main()
