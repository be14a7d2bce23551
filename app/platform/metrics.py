"""Prometheus metrics of one process: the relay's counters, read at scrape time, and HTTP request metrics.

The hub and brokers keep plain integer counters (``channels`` does not depend on
prometheus_client); a collector turns them into samples only when ``/metrics`` is scraped, so the
relay's hot path pays nothing for them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from channels import LatencyHistogram

__all__ = ["HttpMetricsMiddleware", "Metrics"]

Sample = tuple[str, str, str, Callable[[], float]]  # kind, name, help, read
LabelledSample = tuple[str, str, str, str, Callable[[], Mapping[str, float]]]  # kind, name, help, label, read


class _LiveCollector(Collector):
    def __init__(
        self,
        samples: list[Sample],
        labelled: list[LabelledSample],
        histograms: list[tuple[str, str, LatencyHistogram]],
    ) -> None:
        self._samples = samples
        self._labelled = labelled
        self._histograms = histograms

    def collect(self) -> Iterator[Any]:
        for kind, name, documentation, read in self._samples:
            family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            yield family(name, documentation, value=read())
        for kind, name, documentation, label, read_by in self._labelled:
            split: CounterMetricFamily | GaugeMetricFamily = (
                CounterMetricFamily(name, documentation, labels=[label])
                if kind == "counter"
                else GaugeMetricFamily(name, documentation, labels=[label])
            )
            for value, count in read_by().items():
                split.add_metric([value], count)
            yield split
        for name, documentation, histogram in self._histograms:
            buckets = [("+Inf" if bound == math.inf else repr(bound), count) for bound, count in histogram.cumulative()]
            yield HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=histogram.total)


class Metrics:
    """The registry of one process and the instruments the app feeds."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._live: list[Sample] = []
        self._labelled: list[LabelledSample] = []
        self._histograms: list[tuple[str, str, LatencyHistogram]] = []
        self.registry.register(_LiveCollector(self._live, self._labelled, self._histograms))
        self.http_requests = Counter(
            "push_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "push_http_request_duration_seconds",
            "HTTP request duration by route template.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )

    def counter(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """Expose a monotonically increasing value read at scrape time (``_total`` is appended)."""
        self._live.append(("counter", name, documentation, read))

    def counter_by(self, name: str, documentation: str, label: str, read: Callable[[], Mapping[str, float]]) -> None:
        """Expose counters split by one label, read at scrape time as ``{label value: count}``.

        ``read`` should name every label value (zeros included) so that rates start from the first scrape.
        """
        self._labelled.append(("counter", name, documentation, label, read))

    def gauge_by(self, name: str, documentation: str, label: str, read: Callable[[], Mapping[str, float]]) -> None:
        """Expose current values split by one label, read at scrape time as ``{label value: value}``."""
        self._labelled.append(("gauge", name, documentation, label, read))

    def gauge(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """Expose a current value read at scrape time."""
        self._live.append(("gauge", name, documentation, read))

    def histogram(self, name: str, documentation: str, source: LatencyHistogram) -> None:
        """Expose a histogram kept by the relay (``_bucket``, ``_sum`` and ``_count`` are appended)."""
        self._histograms.append((name, documentation, source))

    def render(self) -> bytes:
        """The Prometheus text exposition of everything registered."""
        return generate_latest(self.registry)


class HttpMetricsMiddleware:
    """Counts HTTP requests by route template and status, and times them."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        except Exception as exc:
            # Raised past us (auth, rate limit): the app's exception handler answers with this status.
            status = int(getattr(exc, "status", 0) or getattr(exc, "status_code", 500))
            raise
        finally:
            route = str(scope.get("path_template") or "unmatched")
            self.metrics.http_requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.http_duration.labels(route).observe(time.perf_counter() - started)
