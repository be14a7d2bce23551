"""Writes every WebSocket connection that has queued messages, once per event-loop iteration.

Deferring a write to the end of the current iteration costs no measurable latency, and under load it
turns into batching: messages that arrived together (one read from the broker) share one frame and
one syscall per connection, and connections that got the same batch (a broadcast) share its frame.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Protocol

from channels.frames import text_frame
from channels.outgoing import Outgoing

__all__ = ["FlushPass", "Flushable", "Flusher"]


class FlushPass:
    """What the writes of one flush share: batch frames, the clock, latencies already observed."""

    __slots__ = ("_frames", "now", "observed")

    def __init__(self) -> None:
        self.now = time.time()
        self.observed: set[int] = set()  # ids of events whose latency this pass reported
        self._frames: dict[tuple[int, ...], tuple[bytes, Sequence[Outgoing]]] = {}

    def batch_frame(self, batch: Sequence[Outgoing]) -> bytes:
        """One text frame of ``batch`` joined by newlines; built once per distinct batch."""
        if len(batch) == 1:
            return batch[0].framed()
        key = tuple(map(id, batch))  # the cache holds the batch, so these ids stay unique in this pass
        cached = self._frames.get(key)
        if cached is None:
            cached = self._frames[key] = (text_frame(b"\n".join(item.payload for item in batch)), batch)
        return cached[0]


class Flushable(Protocol):
    """What the ``Flusher`` writes: a connection's writer (``channels/connection.py``), which imports us."""

    def flush(self, flush: FlushPass, /) -> None:
        """Write what is queued while the transport accepts it."""
        ...


class Flusher:
    """Collects connections with queued messages and writes them all in one callback."""

    __slots__ = ("_due", "_handle")

    def __init__(self) -> None:
        self._due: list[Flushable] = []
        self._handle: asyncio.Handle | None = None

    def add(self, writer: Flushable) -> None:
        """Flush ``writer`` at the end of this iteration."""
        self._due.append(writer)
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_soon(self._run)

    def _run(self) -> None:
        due, self._due = self._due, []
        self._handle = None
        flush = FlushPass()
        for writer in due:
            writer.flush(flush)
