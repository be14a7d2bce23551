"""Operations endpoints: liveness and readiness (no token needed)."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency

from app.platform.problems import problem_response
from app.platform.readiness import Readiness

__all__ = ["HealthController"]

logger = logging.getLogger(__name__)


class HealthController(Controller):
    """``/health`` says the process is alive; ``/ready`` that it can serve (database and broker reachable)."""

    include_in_schema = True
    tags = ("operations",)

    @get("/health", summary="The process is alive")
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", summary="The database and the broker are reachable")
    async def ready(self, readiness: NamedDependency[Readiness]) -> Response[Any]:
        checks = await readiness.checks()
        if all(state == "ok" for state in checks.values()):
            return Response({"status": "ready", "checks": checks})
        failing = ", ".join(name for name, state in checks.items() if state != "ok")
        return problem_response(503, f"not ready: {failing} unreachable", slug="unavailable", checks=checks)
