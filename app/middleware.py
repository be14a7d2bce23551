"""Per-request middleware: the request id, bearer authentication and the REST rate limit."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Receive, Scope, Send

from app.auth import Identity, TokenVerifier, bearer_token
from app.ratelimit import RateLimiter
from app.request_context import request_id_for
from app.services.users import UserDirectory

__all__ = ["PUBLIC_PATHS", "BearerAuthMiddleware", "RateLimitMiddleware", "RequestContextMiddleware"]

# Paths that need no token (SPEC): operations, docs, the demo and its assets, signed webhooks,
# and the real-time endpoints, which authenticate themselves (header or single-use ticket).
PUBLIC_PATHS = ["^/health", "^/ready", "^/metrics", "^/schema", "^/demo", "^/static", "^/webhooks", "^/ws", "^/sse"]


class RequestContextMiddleware:
    """Sets the request id for this task's log lines before anything else runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in (ScopeType.HTTP, ScopeType.WEBSOCKET):
            request_id_for(scope)
        await self.app(scope, receive, send)


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    """Verifies ``Authorization: Bearer`` and upserts the caller's user row on first sight."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier, users: UserDirectory) -> None:
        super().__init__(app, exclude=PUBLIC_PATHS, scopes=None)
        self.verifier = verifier
        self.users = users

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        identity = self.verifier.verify(bearer_token(connection.headers.get("authorization")))
        await self.users.ensure(identity)
        return AuthenticationResult(user=identity, auth=None)


class RateLimitMiddleware:
    """SPEC ``RATE_LIMIT``: per customer or vendor, per client IP without a token; admins and services are free."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"].startswith(("/health", "/ready", "/metrics")):
            await self.app(scope, receive, send)
            return
        identity = scope.get("user")
        if isinstance(identity, Identity):
            if identity.is_privileged:
                await self.app(scope, receive, send)
                return
            key = f"user:{identity.user_id}"
        else:
            client = scope.get("client")
            key = f"ip:{client[0] if client else 'unknown'}"
        await self.limiter.hit(key)
        await self.app(scope, receive, send)
