"""Per-request middleware: the request id, bearer authentication and the REST rate limit."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Receive, Scope, Send

from app.platform.auth import Identity, TokenVerifier, bearer_token
from app.platform.errors import ContentTooLarge, NotFound, Unauthorized, ValidationFailed
from app.platform.ratelimit import RateLimiter
from app.platform.request_context import request_id_for
from app.services.revocations import Revocations
from app.services.users import UserDirectory

__all__ = [
    "MAX_BODY_BYTES",
    "PUBLIC_PATHS",
    "BearerAuthMiddleware",
    "InputLimitsMiddleware",
    "RateLimitMiddleware",
    "RequestContextMiddleware",
]

MAX_BODY_BYTES = 1024 * 1024
"""SPEC: a body over 1 MiB is a 413, on every endpoint (also those that never read their body)."""

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


class InputLimitsMiddleware:
    """Input no endpoint can take, refused before any of them runs (SPEC "Errors").

    - A declared body over ``MAX_BODY_BYTES``: 413 (Litestar checks only bodies it reads).
    - A NUL character in the path: 404, since no resource id can hold one.
    - A NUL character in a query parameter: 404 for one naming a resource (``customerId``, ``storeId``:
      camelCase ids end in ``Id``), else 400 naming the parameter. PostgreSQL cannot even compare
      such text, so it must not reach a query.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            check_request_head(scope)
        await self.app(scope, receive, send)


def check_request_head(scope: Scope) -> None:
    """Raise the problem for a request line or headers that no endpoint can serve (see ``InputLimitsMiddleware``).

    Raises:
        ContentTooLarge: the declared ``Content-Length`` is over ``MAX_BODY_BYTES``.
        NotFound: a NUL in the path or in an id parameter.
        ValidationFailed: (400) a NUL in another query parameter.
    """
    for header, header_value in scope["headers"]:
        if header == b"content-length" and header_value.isdigit() and int(header_value) > MAX_BODY_BYTES:
            raise ContentTooLarge(f"the body is over {MAX_BODY_BYTES} bytes")
    if "\x00" in scope["path"]:
        raise NotFound("no such resource")
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                if name.endswith("Id"):
                    raise NotFound("no such resource")
                field = name.replace("\x00", "\\u0000")
                raise ValidationFailed([(field, "must not contain the NUL character (U+0000)")], status=400)


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    """Verifies ``Authorization: Bearer`` and upserts the caller's user row on first sight."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier, users: UserDirectory, revocations: Revocations) -> None:
        super().__init__(app, exclude=PUBLIC_PATHS, scopes=None)
        self.verifier = verifier
        self.users = users
        self.revocations = revocations

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        identity = self.verifier.verify(bearer_token(connection.headers.get("authorization")))
        if self.revocations.refused(identity):
            raise Unauthorized("token revoked: get a new one")
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
