"""Errors of the app package.

Hierarchy:

- :class:`ConfigurationError`: a bad setting; start-up stops with the variable's name.
- :class:`AppError`: a request that cannot be served; rendered as RFC 9457 problem+json by
  :mod:`app.platform.problems`.

  - :class:`BadRequest` (400), :class:`ValidationFailed` (422, with per-field errors)
  - :class:`Unauthorized` (401), :class:`Forbidden` (403), :class:`NotFound` (404)
  - :class:`Conflict` (409), :class:`InvalidTransition` (409, with the allowed next states)
  - :class:`ContentTooLarge` (413)
  - :class:`RateLimited` (429, with ``Retry-After``)
  - :class:`ServiceUnavailable` (503)
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AppError",
    "BadRequest",
    "ConfigurationError",
    "Conflict",
    "ContentTooLarge",
    "FieldError",
    "Forbidden",
    "InvalidTransition",
    "NotFound",
    "RateLimited",
    "ServiceUnavailable",
    "Unauthorized",
    "ValidationFailed",
]


class ConfigurationError(Exception):
    """A setting has a value the server cannot run with."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class AppError(Exception):
    """Base of the errors a request handler raises; each maps to one HTTP status."""

    status = 500
    title = "Internal Server Error"
    slug = "internal"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}

    def extra(self) -> dict[str, object]:
        """Members added to the problem document beside type, title, status and detail."""
        return {}


class BadRequest(AppError):
    """The request is malformed (400)."""

    status = 400
    title = "Bad Request"
    slug = "bad-request"


class FieldError(tuple[str, str]):
    """One field's validation message: ``(field, message)``."""

    __slots__ = ()

    def __new__(cls, field: str, message: str) -> FieldError:
        return super().__new__(cls, (field, message))


class ValidationFailed(AppError):
    """The request is well-formed but some fields are invalid (400 or 422)."""

    status = 422
    title = "Validation Failed"
    slug = "validation"

    def __init__(self, errors: Sequence[tuple[str, str]], *, status: int = 422, detail: str | None = None) -> None:
        self.errors = list(errors)
        self.status = status
        super().__init__(detail or "; ".join(f"{field}: {message}" for field, message in self.errors))

    def extra(self) -> dict[str, object]:
        return {"errors": [{"field": field, "message": message} for field, message in self.errors]}


class Unauthorized(AppError):
    """Missing, malformed, expired or wrongly signed credentials (401)."""

    status = 401
    title = "Unauthorized"
    slug = "unauthorized"


class Forbidden(AppError):
    """The caller's role may never do this (403)."""

    status = 403
    title = "Forbidden"
    slug = "forbidden"


class NotFound(AppError):
    """Absent, or not the caller's: the two are not told apart (404)."""

    status = 404
    title = "Not Found"
    slug = "not-found"


class Conflict(AppError):
    """The request conflicts with the resource's current state (409)."""

    status = 409
    title = "Conflict"
    slug = "conflict"


class InvalidTransition(Conflict):
    """A refused state transition; carries the states that are allowed next."""

    slug = "invalid-transition"

    def __init__(self, detail: str, allowed: Sequence[str]) -> None:
        super().__init__(detail)
        self.allowed = list(allowed)

    def extra(self) -> dict[str, object]:
        return {"allowed": self.allowed}


class ContentTooLarge(AppError):
    """The request body is over the limit (413)."""

    status = 413
    title = "Content Too Large"
    slug = "content-too-large"


class RateLimited(AppError):
    """Too many requests; ``Retry-After`` says when to come back (429)."""

    status = 429
    title = "Too Many Requests"
    slug = "rate-limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limit exceeded; retry in {retry_after} s", headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(AppError):
    """A dependency (database, broker) is not reachable (503)."""

    status = 503
    title = "Service Unavailable"
    slug = "unavailable"
