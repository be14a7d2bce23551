"""Counters of the hub and its connections, read by the app's metrics collectors.

Plain ints and lists, so this package does not depend on prometheus_client.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field

from channels.outgoing import Outgoing

__all__ = ["RELAY_LATENCY_BUCKETS", "HubMetrics", "LatencyHistogram"]

RELAY_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class LatencyHistogram:
    """A histogram observed on the hot path (one bisect and two additions), exported at scrape time.

    prometheus_client's ``Histogram.observe`` costs ~1.1 µs (a lock and a Python loop over the
    buckets); this costs ~0.15 µs, paid for every event written.

    Attributes:
        bounds: Upper bounds of the buckets (``le``), ascending; a last, unbounded bucket is implied.
        counts: Observations per bucket, not cumulative; ``counts[-1]`` is the unbounded one.
        total: Sum of the observed values.
    """

    bounds: tuple[float, ...] = RELAY_LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        """Count ``value`` in the first bucket whose bound is at least ``value``."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[float, int]]:
        """``(le, observations <= le)`` for every bound, then ``(inf, all observations)``."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


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
        latency: Seconds from publish ``ts`` to the write of each event.
    """

    events_in: int = 0
    events_out: int = 0
    slow_consumer_closes: int = 0
    coalesced: int = 0
    gaps_filled: int = 0
    history_lost: int = 0
    resyncs: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def written(self, batch: Sequence[Outgoing], now: float, observed: set[int] | None = None) -> None:
        """Count the events of a batch written at ``now``.

        Args:
            observed: Ids of events whose latency this flush already reported: the recipients of one
                event in one flush share its write time, so it is one latency sample, not one per socket.
        """
        latency = self.latency
        for item in batch:
            if item.kind == "event":
                self.events_out += 1
                if item.published_at is not None:
                    if observed is not None:
                        if id(item) in observed:
                            continue
                        observed.add(id(item))
                    latency.observe(now - item.published_at)
