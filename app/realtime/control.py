"""The server's own channel: instructions every process carries out (``POST /realtime/disconnect``).

An instruction is an event on channel ``control:server``, published with history through the same
broker as every other event, and received by every process through its hub: an internal hub
connection is subscribed to it for the process's life. So it reaches every process on Redis (one
server, Sentinel or Cluster) and this process on the in-process broker, and one a process missed
while its pub/sub was reconnecting is refilled from history like any event. Browsers cannot join
it: ``/ws`` and ``/sse`` accept only ``user:``, ``order:`` and ``store:`` channels.

``server.disconnect`` ``{"userId", "revokedBefore"?}``: apply the revocation cut-off (UNIX time) to
this process's copy, then close the user's sockets and streams here with 4003.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import msgspec

from app.realtime.sessions import Sessions
from app.services.revocations import Revocations
from channels import Broker, Hub

__all__ = ["CONTROL_CHANNEL", "ControlPlane"]

logger = logging.getLogger(__name__)

CONTROL_CHANNEL = "control:server"
_DISCONNECT = "server.disconnect"


class _Instruction(msgspec.Struct, frozen=True):
    op: str
    type: str | None = None
    data: dict[str, Any] | None = None


_decode = msgspec.json.Decoder(_Instruction).decode


class ControlPlane:
    """Sends instructions to every process and carries out those that arrive here."""

    def __init__(self, hub: Hub, broker: Broker, sessions: Sessions, revocations: Revocations) -> None:
        self._hub = hub
        self._broker = broker
        self._sessions = sessions
        self._revocations = revocations
        self._stack = contextlib.AsyncExitStack()
        self.applied = 0

    async def start(self) -> None:
        """Subscribe this process to the control channel (before the revocations are loaded)."""
        conn = await self._stack.enter_async_context(self._hub.connect(self._received, self._closed))
        await self._hub.subscribe(conn, CONTROL_CHANNEL, announce=False)

    async def stop(self) -> None:
        """Leave the control channel."""
        await self._stack.aclose()

    async def disconnect(self, user_id: str, revoked_before: float | None) -> None:
        """Tell every process (this one too) to close ``user_id``'s connections, applying a revocation first.

        Raises:
            BrokerUnavailable: the broker cannot be reached.
        """
        data: dict[str, Any] = {"userId": user_id}
        if revoked_before is not None:
            data["revokedBefore"] = revoked_before
        await self._broker.publish(CONTROL_CHANNEL, _DISCONNECT, msgspec.json.encode(data))

    async def _received(self, frame: bytes) -> None:
        for line in frame.split(b"\n"):
            try:
                instruction = _decode(line)
            except msgspec.DecodeError:
                logger.warning("control channel: undecodable message %.200r", line)
                continue
            if instruction.op == "event" and instruction.type == _DISCONNECT and instruction.data is not None:
                self._disconnect(instruction.data)

    def _disconnect(self, data: dict[str, Any]) -> None:
        user_id = data.get("userId")
        if not isinstance(user_id, str):
            return
        cutoff = data.get("revokedBefore")
        if isinstance(cutoff, int | float):
            self._revocations.apply(user_id, float(cutoff))
        closed = self._sessions.disconnect(user_id)
        self.applied += 1
        logger.info("disconnected user %s: %d connections here", user_id, closed)

    async def _closed(self, code: int, reason: str) -> None:
        """The hub closed the internal connection (shutdown)."""
        logger.debug("control channel connection closed: %s %s", code, reason)
