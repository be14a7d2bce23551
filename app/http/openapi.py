"""The OpenAPI document: every status an operation can answer, as problem+json, and how to authenticate.

Litestar documents a handler's success response and its validation 400. The rest follows from rules
this app applies to every route, so they are written once here rather than on every handler:

- 400: any request (a NUL in a query parameter, a malformed or too deep body, bad parameters);
- 401: every operation behind the bearer token (``PUBLIC_PATHS`` are not), and the signed webhooks;
- 403: operations with a role guard;
- 404: operations with an id in their path, or a ``problems`` opt naming it (``?customerId=``);
- 413: operations that take a body;
- 429: everything the REST rate limit covers (all but ``/health``, ``/ready``, ``/metrics``);
- 503: everything that needs the database or Redis.

Statuses only a handler knows (409 for a refused transition, 422 for an unknown referenced id) are
listed in its ``opt={"problems": (...)}``; see :func:`problems`.
"""

from __future__ import annotations

import re

import msgspec
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute

from app.http.middleware import PUBLIC_PATHS
from app.http.openapi_inputs import InputRulesJsonPlugin

__all__ = ["FieldProblem", "Problem", "ProblemDocs", "openapi_config", "problems"]

PROBLEM_JSON = "application/problem+json"
BEARER = "BearerToken"
WEBHOOK_SIGNATURE = "WebhookSignature"

_DESCRIPTIONS = {
    400: "Bad input: a malformed or out-of-range parameter or body; `errors` names each field",
    401: "Missing, malformed, expired or revoked credentials",
    403: "The caller's role may never do this",
    404: "Absent, or not the caller's (the two are not told apart)",
    409: "A refused state transition; `allowed` lists the next states",
    413: "The body is over 1 MiB",
    422: "Well-formed, but it refers to something that does not exist (yet)",
    429: "Rate limited: retry after `Retry-After` seconds",
    503: "The database or Redis is unavailable: retry after `Retry-After` seconds",
}
_UNLIMITED = re.compile(r"^/(health|ready|metrics)$")
_NO_DEPENDENCY = re.compile(r"^/(health|metrics|schema.*|demo.*|static.*)$")
_PUBLIC = re.compile("|".join(PUBLIC_PATHS))


class FieldProblem(msgspec.Struct, frozen=True):
    """One invalid field: its path (``items[2].quantity``) and what is wrong with it."""

    field: str
    message: str


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """An RFC 9457 problem document, the body of every error."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None
    allowed: list[str] | None = None


def problems(*statuses: int) -> dict[str, tuple[int, ...]]:
    """The ``opt`` of a handler that can answer ``statuses`` beyond the rules above."""
    return {"problems": statuses}


def _problem_response(status: int) -> ResponseSpec:
    return ResponseSpec(
        data_container=Problem, description=_DESCRIPTIONS[status], media_type=PROBLEM_JSON, generate_examples=False
    )


def _statuses(path: str, handler: HTTPRouteHandler) -> set[int]:
    statuses = {400}
    public = bool(_PUBLIC.match(path))
    if not public or path.startswith("/webhooks"):
        statuses.add(401)
    if handler.resolve_guards():
        statuses.add(403)
    if "{" in path:
        statuses.add(404)
    if handler.http_methods & {"POST", "PUT", "PATCH"}:
        statuses.add(413)
    if not _UNLIMITED.match(path):
        statuses.add(429)
    if not _NO_DEPENDENCY.match(path):
        statuses.add(503)
    statuses.update(handler.opt.get("problems", ()))
    return statuses


class ProblemDocs(ReceiveRoutePlugin):
    """Adds the problem+json responses and the security requirement of each route as it is registered."""

    def receive_route(self, route: BaseRoute) -> None:
        """Document ``route``'s handlers (before the OpenAPI document is built)."""
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            if not handler.include_in_schema:
                continue
            documented: dict[int, ResponseSpec] = dict(handler.responses or {})
            for status in _statuses(route.path_format, handler):
                documented.setdefault(status, _problem_response(status))
            handler.responses = documented
            if route.path_format.startswith("/webhooks"):
                handler.security = [{WEBHOOK_SIGNATURE: []}]
            elif not _PUBLIC.match(route.path_format):
                handler.security = [{BEARER: []}]


def openapi_config(version: str) -> OpenAPIConfig:
    """The document served at ``/schema``, with the bearer and webhook-signature schemes."""
    return OpenAPIConfig(
        title="Marketplace push server",
        version=version,
        path="/schema",
        render_plugins=[InputRulesJsonPlugin(path=["/", "/openapi.json"])],
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="HS256 (JWT_SECRET) or RS256 (JWT_PUBLIC_KEY); claims sub, role, exp",
                ),
                WEBHOOK_SIGNATURE: SecurityScheme(
                    type="apiKey",
                    name="X-Signature",
                    security_scheme_in="header",
                    description='t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with WEBHOOK_SECRET>',
                ),
            }
        ),
    )
