"""The Litestar application: routes, middleware, error handling, CORS and OpenAPI, built from the settings."""

from __future__ import annotations

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.static_files import create_static_files_router

from app.http.controllers.catalog import CatalogController
from app.http.controllers.customer import CustomerController
from app.http.controllers.demo import STATIC, DemoController
from app.http.controllers.health import HealthController
from app.http.controllers.identity import IdentityController
from app.http.controllers.metrics import MetricsController
from app.http.controllers.notifications import NotificationsController
from app.http.controllers.orders import OrdersController
from app.http.controllers.realtime import RealtimeController
from app.http.controllers.server_api import ServerApiController
from app.http.controllers.tracking import TrackingController
from app.http.controllers.webhooks import WebhooksController
from app.http.middleware import (
    MAX_BODY_BYTES,
    BearerAuthMiddleware,
    InputLimitsMiddleware,
    RateLimitMiddleware,
    RequestContextMiddleware,
)
from app.http.openapi import ProblemDocs, openapi_config
from app.http.request_body import CheckedRequest
from app.platform.metrics import HttpMetricsMiddleware
from app.platform.problems import EXCEPTION_HANDLERS
from app.platform.request_context import stamp_request_id
from app.platform.settings import Settings, load_settings
from app.process import tune_garbage_collector
from app.realtime.sse import sse_endpoint
from app.realtime.ws import websocket_endpoint, websockets_first
from app.runtime import Runtime

__all__ = ["create_app", "create_served_app"]


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the app for ``settings`` (read from the environment when not given)."""
    settings = settings or load_settings()
    runtime = Runtime(settings)
    cors = (
        CORSConfig(
            allow_origins=list(settings.allowed_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match", "X-Request-ID", "X-Signature"],
            expose_headers=["ETag", "X-Request-ID", "Retry-After"],
            allow_credentials=False,
        )
        if settings.allowed_origins
        else CORSConfig(allow_origins=["*"], expose_headers=["ETag", "X-Request-ID", "Retry-After"])
    )
    app = Litestar(
        route_handlers=[
            DemoController,
            create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False),
            HealthController,
            IdentityController,
            MetricsController,
            NotificationsController,
            CatalogController,
            OrdersController,
            TrackingController,
            WebhooksController,
            CustomerController,
            RealtimeController,
            ServerApiController,
            websocket_endpoint,
            sse_endpoint,
        ],
        dependencies=runtime.dependencies(),
        middleware=[
            RequestContextMiddleware,
            InputLimitsMiddleware,
            DefineMiddleware(HttpMetricsMiddleware, metrics=runtime.metrics),
            DefineMiddleware(
                BearerAuthMiddleware, verifier=runtime.verifier, users=runtime.users, revocations=runtime.revocations
            ),
            DefineMiddleware(RateLimitMiddleware, limiter=runtime.rate_limiter),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[stamp_request_id],
        lifespan=[runtime.lifespan],
        cors_config=cors,
        openapi_config=openapi_config(version="0.1.0"),
        plugins=[ProblemDocs()],
        request_max_body_size=MAX_BODY_BYTES,
        request_class=CheckedRequest,
        state=State({"runtime": runtime, "realtime": runtime.realtime}),
        debug=False,
    )
    # /ws sockets bypass the middleware stack and router (per-socket memory and connect CPU); see ws.py.
    app.asgi_handler = websockets_first(app.asgi_handler)
    return app


def create_served_app() -> Litestar:
    """The app of ``python -m app serve``: ``create_app`` plus the serving process's own choices."""
    app = create_app()
    app.on_startup.append(tune_garbage_collector)
    return app
