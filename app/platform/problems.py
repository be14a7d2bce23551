"""RFC 9457 problem+json for every error: ours, Litestar's (validation, 404, 405, 413) and unexpected ones."""

from __future__ import annotations

import logging
import re
import sqlite3
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from app.platform.errors import AppError
from app.platform.outages import UNAVAILABLE, OutageLog, is_outage
from app.platform.request_context import request_id_for
from app.platform.validation import field_and_message

__all__ = ["EXCEPTION_HANDLERS", "problem_body", "problem_response", "raw_problem_response"]

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Validation Failed",
    426: "Upgrade Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _problem(status: int, detail: str, slug: str | None, extra: dict[str, Any]) -> dict[str, Any]:
    title = _TITLES.get(status, "Error")
    return {
        "type": f"/problems/{slug or title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }


def problem_body(status: int, detail: str, *, slug: str | None = None, **extra: Any) -> bytes:
    """The encoded problem document, for raw ASGI handlers (SSE refusals)."""
    return msgspec.json.encode(_problem(status, detail, slug, extra))


def raw_problem_response(status: int, detail: str, request_id: str) -> bytes:
    """A whole HTTP/1.1 problem+json response that closes the connection, for answers given before
    any ASGI app runs (a request head that is malformed, too large or too slow)."""
    body = problem_body(status, detail)
    head = (
        f"HTTP/1.1 {status} {_TITLES.get(status, 'Error')}\r\n"
        f"content-type: {PROBLEM_JSON}\r\ncontent-length: {len(body)}\r\n"
        f"x-request-id: {request_id}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def problem_response(
    status: int, detail: str, *, slug: str | None = None, headers: dict[str, str] | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    """A problem+json response with ``type``, ``title``, ``status``, ``detail`` and any extra members."""
    body = _problem(status, detail, slug, extra)
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _app_error(_request: Request[Any, Any, Any], exc: AppError) -> Response[dict[str, Any]]:
    return problem_response(exc.status, exc.detail, slug=exc.slug, headers=exc.headers, **exc.extra())


_MISSING = re.compile(r"Missing required (?:\w+ )?parameter '(?P<name>[^']+)'")


def _validation_error(_request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    """Litestar's refusals of parameters and bodies, each error naming its field (a body's by its path)."""
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            message = str(item.get("message", "invalid value"))
            field = str(item.get("key") or "")
            if not field or item.get("source") == "body":
                field, message = field_and_message(message, root=field or "body")
            errors.append({"field": field, "message": message})
    missing = _MISSING.search(exc.detail or "")
    if not errors and missing is not None:
        errors.append({"field": missing["name"], "message": "is required"})
    detail = "; ".join(f"{error['field']}: {error['message']}" for error in errors) or exc.detail
    return problem_response(400, detail, slug="validation", errors=errors)


def _http_error(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    headers = {key: str(value) for key, value in (exc.headers or {}).items()}
    return problem_response(exc.status_code, exc.detail, headers=headers)


# For apps built without a Runtime (tests of the error handling alone).
_fallback_outages = OutageLog({})


def _dependency_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """The database or Redis is away: a 503 the client may retry, not a 500, and no log line per request."""
    if not is_outage(exc):
        return _unexpected_error(request, exc)
    runtime = request.app.state.get("runtime")
    outages: OutageLog = runtime.outages if runtime is not None else _fallback_outages
    dependency = outages.record(exc)
    return problem_response(
        503, f"the {dependency} is unavailable; retry shortly", slug="unavailable", headers={"Retry-After": "1"}
    )


def _unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    request_id = request_id_for(request.scope)
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        HTTP_500_INTERNAL_SERVER_ERROR, f"internal error; quote request id {request_id} when reporting it"
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    **dict.fromkeys((*UNAVAILABLE, sqlite3.OperationalError), _dependency_unavailable),
    AppError: _app_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    Exception: _unexpected_error,
}
