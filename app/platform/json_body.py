"""Untrusted JSON bodies decoded safely: depth bounded before decoding, NUL refused, errors naming the field.

SPEC "Errors": JSON nested deeper than 32 levels and text holding U+0000 are 400 naming the field,
never a 5xx (msgspec raises ``RecursionError`` on deep JSON; PostgreSQL refuses NUL in text). The
HTTP edge's request class (``app/http/request_body.py``) runs every ``data`` body through
:func:`decode_json_body`; code that reads a raw body itself (signed webhooks) uses :func:`decode_checked`.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from app.platform.errors import BadRequest, ValidationFailed
from app.platform.validation import validation_failed
from channels.jsonlimits import MAX_DEPTH, find_nul, too_deep

__all__ = ["decode_checked", "decode_json_body"]

_T = TypeVar("_T")
_untyped = msgspec.json.Decoder()


def decode_json_body(raw: bytes) -> Any:
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
    """Decode ``raw`` into ``type_`` with the checks of :func:`decode_json_body`.

    Raises:
        ValidationFailed: (400) as :func:`decode_json_body`, or a field of the wrong type or out of range
            (named by its path, e.g. ``data.amountCents``).
        BadRequest: the body is not JSON.
    """
    value = decode_json_body(raw)
    try:
        return msgspec.convert(value, type_, strict=True)
    except msgspec.ValidationError as exc:
        raise validation_failed(exc) from None
