"""What the hub queues for a connection: one encoded server message, shared by every recipient."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import msgspec

from channels.frames import text_frame
from channels.offsets import Offset

__all__ = ["FrameFormatter", "Outgoing", "join_lines"]


class Outgoing(msgspec.Struct, frozen=True):
    """One encoded server message queued for a connection; shared by every recipient.

    Attributes:
        payload: The message's JSON bytes.
        kind: ``event`` or ``control`` (subscribed, pong, error...).
        channel: The channel it concerns, if any.
        offset: The event's offset; for a ``subscribed`` reset, the new resume offset.
        type: Event type (``None`` for control messages).
        published_at: Publish time as a UNIX timestamp, for latency metrics.
        coalesce: True for a live event that a newer one of the same channel may replace.
        wire: Cache of ``framed()``; leave it unset.
    """

    payload: bytes
    kind: Literal["event", "control"] = "control"
    channel: str | None = None
    offset: Offset | None = None
    type: str | None = None
    published_at: float | None = None
    coalesce: bool = False
    wire: bytes | None = None

    def framed(self) -> bytes:
        """The payload as one WebSocket text frame, built by the first recipient and shared by all."""
        wire = self.wire
        if wire is None:
            wire = text_frame(self.payload)
            # A cache, not state: frozen keeps everything else immutable while recipients share the item.
            msgspec.structs.force_setattr(self, "wire", wire)
        return wire


FrameFormatter = Callable[[Sequence[Outgoing]], bytes]


def join_lines(batch: Sequence[Outgoing]) -> bytes:
    """Default frame format: messages separated by ``\\n`` (SPEC allows batching)."""
    if len(batch) == 1:
        return batch[0].payload  # the very bytes object shared by every subscriber
    return b"\n".join(item.payload for item in batch)
