"""JSON request bodies, checked once for every endpoint before anything decodes them.

SPEC "Errors": JSON nested deeper than 32 levels and text holding U+0000 are 400 naming the field,
never a 5xx (msgspec raises ``RecursionError`` on deep JSON; PostgreSQL refuses NUL in text). Litestar
decodes every ``data`` body through ``Request.json()``; :class:`CheckedRequest` is the app's request
class, so every endpoint gets the check. Endpoints that read the raw body themselves (signed
webhooks) decode through :func:`decode_checked`.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.types import Empty

from app.errors import BadRequest, ValidationFailed
from app.validation import validation_failed
from channels.jsonlimits import MAX_DEPTH, find_nul, too_deep

__all__ = ["CheckedRequest", "check_json", "decode_checked"]

_T = TypeVar("_T")
_untyped = msgspec.json.Decoder()


def check_json(raw: bytes) -> Any:
    """Decode an untrusted JSON body after bounding its depth; refuse NUL characters in its text.

    Raises:
        ValidationFailed: (400) the body nests deeper than 32 levels, or a string holds U+0000
            (the error names its field).
        BadRequest: the body is not JSON.
    """
    if too_deep(raw):
        raise ValidationFailed([("body", f"JSON nested deeper than {MAX_DEPTH} levels")], status=400)
    try:
        value = _untyped.decode(raw)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    nul = find_nul(raw, value)
    if nul is not None:
        raise ValidationFailed([(nul or "body", "must not contain the NUL character (U+0000)")], status=400)
    return value


def decode_checked(raw: bytes, type_: type[_T]) -> _T:
    """Decode ``raw`` into ``type_`` with the checks of :func:`check_json`.

    Raises:
        ValidationFailed: (400) as :func:`check_json`, or a field of the wrong type or out of range
            (named by its path, e.g. ``data.amountCents``).
        BadRequest: the body is not JSON.
    """
    value = check_json(raw)
    try:
        return msgspec.convert(value, type_, strict=True)
    except msgspec.ValidationError as exc:
        raise validation_failed(exc) from None


class CheckedRequest(Request[Any, Any, Any]):
    """Litestar's request whose ``json()`` bounds depth and refuses NUL before the body is used."""

    async def json(self) -> Any:
        """The decoded JSON body (``None`` when empty), checked by :func:`check_json`."""
        if self._json is Empty:
            if self._connection_state.json is not Empty:
                self._json = self._connection_state.json
            else:
                body = await self.body()
                self._json = self._connection_state.json = check_json(body) if body else None
        return self._json
