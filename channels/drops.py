"""Producer messages a listener dropped: counted by reason, logged at most once a second per reason.

A misbehaving producer can send thousands of bad messages a second; every one is counted (the
``push_producer_events_dropped_total{reason}`` metric reads the counts), but a log line is written
only for the first of each reason in an interval, carrying how many were dropped since the last
line, so a flood cannot fill the disks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from channels.errors import InvalidEvent

__all__ = ["DropLog"]


class DropLog:
    """Counts dropped producer messages into ``counts`` and writes rate-limited log lines.

    Args:
        counts: reason -> messages dropped (``BrokerStats.dropped``), updated in place.
        logger: Where the lines go (warning level).
        interval: Seconds between two lines of one reason.
        clock: ``time.monotonic`` (tests pass their own).
    """

    def __init__(
        self,
        counts: dict[str, int],
        logger: logging.Logger,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.counts = counts
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._logged_at: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def drop(self, channel: str, error: InvalidEvent, payload: bytes) -> None:
        """Count one dropped message and log it unless its reason was logged less than ``interval`` ago."""
        reason = error.reason
        self.counts[reason] = self.counts.get(reason, 0) + 1
        now = self.clock()
        logged_at = self._logged_at.get(reason)
        if logged_at is not None and now - logged_at < self.interval:
            self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
            return
        self._logged_at[reason] = now
        unlogged = self._unlogged.pop(reason, 0)
        more = f" (+{unlogged} more {reason} since the last line)" if unlogged else ""
        self.logger.warning(
            "dropped producer message on %s: %s: %s%s; %d bytes, starting %.120r",
            channel,
            reason,
            error,
            more,
            len(payload),
            payload[:120],
        )
