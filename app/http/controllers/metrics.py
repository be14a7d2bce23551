"""``GET /metrics``: Prometheus text of this process (no token needed)."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.di import NamedDependency

from app.platform.metrics import Metrics

__all__ = ["PROMETHEUS_TEXT", "MetricsController"]

PROMETHEUS_TEXT = "text/plain; version=1.0.0"


class MetricsController(Controller):
    """Scrape endpoint: connections, subscriptions, events relayed and dropped, latencies, HTTP requests."""

    tags = ("operations",)

    @get("/metrics", summary="Prometheus metrics of this process", media_type=PROMETHEUS_TEXT)
    async def scrape(self, metrics: NamedDependency[Metrics]) -> Response[bytes]:
        # Litestar appends "; charset=utf-8" to text types, which gives prometheus_client's CONTENT_TYPE_LATEST.
        return Response(metrics.render(), media_type=PROMETHEUS_TEXT)
