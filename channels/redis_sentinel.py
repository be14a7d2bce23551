"""Sentinel's ``+switch-master``: move to the new master the moment the sentinels announce it.

redis-py's Sentinel pools find the master on every new connection, and a command sent to a demoted
master fails (``READONLY``) and is retried on the new one. A pub/sub connection to a demoted master
fails at nothing: it stays open and quiet while producers publish elsewhere. So the broker also
listens to the sentinels' ``+switch-master`` notifications and reconnects its pub/sub (and drops
its idle command connections) as soon as one names its service; the canary catches the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.asyncio.sentinel import Sentinel

__all__ = ["SwitchMasterWatcher"]

logger = logging.getLogger(__name__)


class SwitchMasterWatcher:
    """Calls ``on_switch`` whenever a sentinel announces a new master for ``service``.

    Args:
        sentinel: redis-py's ``Sentinel`` of the target (its sentinel clients are used in turn).
        service: The master group name.
        on_switch: Called with the new master's ``host:port``.
        retry_seconds: Pause before trying the next sentinel after one failed.
    """

    def __init__(
        self, sentinel: Sentinel, service: str, on_switch: Callable[[str], None], retry_seconds: float = 1.0
    ) -> None:
        self._sentinel = sentinel
        self._service = service
        self._on_switch = on_switch
        self._retry = retry_seconds
        self._task: asyncio.Task[None] | None = None
        self.switches = 0

    def start(self) -> None:
        """Start listening (in the background; a sentinel that is down is skipped)."""
        self._task = asyncio.create_task(self._watch(), name=f"sentinel-switch-{self._service}")

    async def stop(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        index = 0
        while True:
            client = self._sentinel.sentinels[index % len(self._sentinel.sentinels)]
            index += 1
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe("+switch-master")
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    # "<service> <old ip> <old port> <new ip> <new port>"
                    fields = message["data"].decode().split()
                    if len(fields) == 5 and fields[0] == self._service:
                        self.switches += 1
                        logger.warning("sentinel: %s moved to %s:%s", self._service, fields[3], fields[4])
                        self._on_switch(f"{fields[3]}:{fields[4]}")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.info("sentinel notifications interrupted (%r); trying the next sentinel", exc)
                await asyncio.sleep(self._retry)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis-py 8
