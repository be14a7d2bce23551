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
    """Litestar's request whose ``json()`` checks the body before any handler sees it.

    Beyond :func:`check_json`, a body declared as a msgspec Struct is validated strictly here:
    Litestar converts handler arguments leniently (query strings need it), which would take
    ``"scheduledFor": 0`` as 1970 or ``"quantity": "2"`` as 2, and it names only the parent of an
    invalid field. Strictly, the types are the documented ones and the error names the field's path.
    """

    async def json(self) -> Any:
        """The decoded JSON body (``None`` when empty), checked by :func:`check_json` and its declared type."""
        if self._json is Empty:
            if self._connection_state.json is not Empty:
                self._json = self._connection_state.json
            else:
                body = await self.body()
                value = check_json(body) if body else None
                self._json = self._connection_state.json = self._check_declared_type(value)
        return self._json

    def _check_declared_type(self, value: Any) -> Any:
        declared = self.route_handler.parsed_data_field
        if declared is None or not isinstance(declared.type_, type) or not issubclass(declared.type_, msgspec.Struct):
            return value
        value = _integral_floats_as_ints(value)
        try:
            msgspec.convert(value, declared.type_, strict=True)
        except msgspec.ValidationError as exc:
            raise validation_failed(exc) from None
        return value


def _integral_floats_as_ints(value: Any) -> Any:
    """``2.0`` as ``2``: JSON has one number type, and JSON Schema's ``integer`` includes 2.0."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    return value
