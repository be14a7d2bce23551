"""The request id: kept from a well-formed ``X-Request-ID`` or generated, on every response and log line."""

from __future__ import annotations

import itertools
import os
import re
from contextvars import ContextVar
from typing import Any

__all__ = ["current_request_id", "new_request_id", "request_id_for", "stamp_request_id"]

_WELL_FORMED = re.compile(rb"^[A-Za-z0-9._:-]{8,128}$")
_current: ContextVar[str | None] = ContextVar("request_id", default=None)
# A random per-process prefix and a counter: unique across processes, and no entropy read per request
# (os.urandom behind uuid4 costs tens of microseconds on some virtual machines).
_PROCESS_PREFIX = os.urandom(10).hex()
_counter = itertools.count(1)


def new_request_id(incoming: bytes | None = None) -> str:
    """``incoming`` when it is a well-formed request id, else a new one unique across processes."""
    if incoming and _WELL_FORMED.match(incoming):
        return incoming.decode()
    return f"{_PROCESS_PREFIX}{next(_counter):012x}"


def current_request_id() -> str | None:
    """The id of the request being served in this task, for log lines."""
    return _current.get()


def request_id_for(scope: Any) -> str:
    """The request's id: the client's if well-formed, else a new one; stored on the scope once."""
    state = scope.setdefault("state", {})
    request_id: str | None = state.get("request_id")
    if request_id is None:
        incoming = next((value for name, value in scope.get("headers", ()) if name == b"x-request-id"), None)
        request_id = new_request_id(incoming)
        state["request_id"] = request_id
    _current.set(request_id)
    return request_id


async def stamp_request_id(message: Any, scope: Any) -> None:
    """Litestar ``before_send`` hook: every response, errors and 404s included, carries ``X-Request-ID``."""
    if message["type"] == "http.response.start":
        headers = list(message.get("headers", ()))
        headers.append((b"x-request-id", request_id_for(scope).encode()))
        message["headers"] = headers
