"""msgspec's validation errors as SPEC's ``errors: [{"field", "message"}]``, the field named by its path.

msgspec says ``Expected `int` <= 5 - at `$.items[1].quantity``` or ``Object missing required field
`line1` - at `$.shippingAddress```; clients want ``items[1].quantity`` and ``shippingAddress.line1``,
the field itself rather than its parent, whatever endpoint or body shape it came from.
"""

from __future__ import annotations

import re

import msgspec

from app.platform.errors import ValidationFailed

__all__ = ["field_and_message", "validation_failed"]

_AT = re.compile(r"^(?P<message>.*?) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
# Errors about a member of the object at the path: the member is the field.
_MEMBER = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<name>[^`]*)`$")


def field_and_message(error: str, root: str = "body", prefix: str = "") -> tuple[str, str]:
    """Split one msgspec validation message into the field's path and the message.

    Args:
        error: ``str()`` of a ``msgspec.ValidationError``.
        root: The name of the whole document (the body, or a parameter) when the error is about it.
        prefix: Path of the validated value inside the body (``data`` for a webhook's data).
    """
    match = _AT.match(error)
    message, path = (match["message"], match["path"].lstrip(".")) if match else (error, "")
    member = _MEMBER.match(message)
    if member is not None:
        name = member["name"]
        path = f"{path}.{name}" if path else name
    if prefix and path:
        path = f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"
    return (path or root), message


def validation_failed(exc: msgspec.ValidationError, root: str = "body", prefix: str = "") -> ValidationFailed:
    """The 400 for a body (or a part of it) that msgspec refused."""
    return ValidationFailed([field_and_message(str(exc), root, prefix)], status=400)
