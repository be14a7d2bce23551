"""JSON request bodies, checked once for every endpoint before anything decodes them.

Litestar decodes every ``data`` body through ``Request.json()``; :class:`CheckedRequest` is the
app's request class, so every endpoint gets the checks of ``app/platform/json_body.py`` (depth, NUL) and a
strict validation against its declared struct.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.types import Empty

from app.platform.json_body import decode_json_body
from app.platform.validation import validation_failed

__all__ = ["CheckedRequest"]


class CheckedRequest(Request[Any, Any, Any]):
    """Litestar's request whose ``json()`` checks the body before any handler sees it.

    Beyond :func:`~app.platform.json_body.decode_json_body`, a body declared as a msgspec Struct is validated
    strictly here: Litestar converts handler arguments leniently (query strings need it), which would
    take ``"scheduledFor": 0`` as 1970 or ``"quantity": "2"`` as 2, and it names only the parent of
    an invalid field. Strictly, the types are the documented ones and the error names the field's path.
    """

    async def json(self) -> Any:
        """The decoded JSON body (``None`` when empty), checked for depth and NUL, then against its declared type."""
        if self._json is Empty:
            if self._connection_state.json is not Empty:
                self._json = self._connection_state.json
            else:
                body = await self.body()
                value = decode_json_body(body) if body else None
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
