"""``GET /metrics``: Prometheus text of this process (no token needed)."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from prometheus_client import CONTENT_TYPE_LATEST

from app.runtime import Runtime

__all__ = ["MetricsController"]


class MetricsController(Controller):
    """Scrape endpoint: connections, subscriptions, events relayed and dropped, latencies, HTTP requests."""

    tags = ("operations",)

    @get("/metrics", summary="Prometheus metrics of this process")
    async def metrics(self, runtime: NamedDependency[Runtime]) -> Response[bytes]:
        return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
