"""Counters of the hub and its connections, read by the app's metrics collectors.

Plain ints and an optional callback, so this package does not depend on prometheus_client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["HubMetrics"]


@dataclass
class HubMetrics:
    """Counters kept by the hub and its connections.

    Attributes:
        events_in: Events received from the broker (live, gap fills and resyncs).
        events_out: Event messages written to connections.
        slow_consumer_closes: Connections closed with 4008 because their send queue overflowed.
        coalesced: Queued live ``tracking.location`` events replaced by a newer one.
        gaps_filled: Events fetched from history because live delivery skipped them.
        history_lost: Times a channel's history could not fill a gap (client told ``recovered: false``).
        resyncs: Broker reconnections handled by refilling channels from history.
        latency_observer: Called with seconds from publish ``ts`` to the write of each event.
    """

    events_in: int = 0
    events_out: int = 0
    slow_consumer_closes: int = 0
    coalesced: int = 0
    gaps_filled: int = 0
    history_lost: int = 0
    resyncs: int = 0
    latency_observer: Callable[[float], None] | None = None

    def observe_latency(self, seconds: float) -> None:
        """Report one publish-to-write latency to the observer, if any."""
        if self.latency_observer is not None:
            self.latency_observer(seconds)
