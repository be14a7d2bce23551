"""Keyset pagination: opaque, tamper-evident cursors and the ``limit`` rules of SPEC "JSON".

A cursor holds the sort key of the last item of a page (for example ``(createdAt, id)``), signed so
that a forged or truncated cursor is a clear 400 instead of a silently wrong page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

from app.platform.errors import ValidationFailed

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "Cursor", "CursorCodec", "Limit", "Page", "check_limit"]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
T = TypeVar("T")

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description=f"items per page, 1..{MAX_LIMIT}")]
"""The ``limit`` query parameter of every list (validated and documented by Litestar)."""

Cursor = Annotated[
    str | None,
    QueryParameter(
        pattern="^[A-Za-z0-9_-]{16,1024}$",
        description="opaque: the nextCursor of the previous page (signed; any other value is a 400)",
    ),
]
"""The ``cursor`` query parameter of every list."""


class Page(msgspec.Struct, Generic[T], frozen=True, rename="camel"):
    """One page of a list: ``{"items": [...], "nextCursor": "..." | null}``."""

    items: Sequence[T]
    next_cursor: str | None


def check_limit(limit: int) -> int:
    """SPEC: default 20, max 100.

    Raises:
        ValidationFailed: (400) naming ``limit``.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed([("limit", f"must be between 1 and {MAX_LIMIT}, got {limit}")], status=400)
    return limit


class CursorCodec:
    """Encodes sort keys into signed opaque cursors and back."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"cursor:" + secret.encode()).digest()

    def encode(self, key: Sequence[str | int]) -> str:
        """An opaque cursor for the sort key ``key``."""
        body = msgspec.json.encode(list(key))
        tag = hmac.new(self._key, body, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(tag + body).rstrip(b"=").decode()

    def decode(self, cursor: str, arity: int) -> list[str | int]:
        """The sort key inside ``cursor``.

        Raises:
            ValidationFailed: (400) naming ``cursor`` when it is malformed or was not issued here.
        """
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            tag, body = raw[:12], raw[12:]
            if not hmac.compare_digest(tag, hmac.new(self._key, body, hashlib.sha256).digest()[:12]):
                raise ValueError("signature")
            key = msgspec.json.decode(body, type=list[str | int])
            if len(key) != arity:
                raise ValueError("arity")
            return key
        except (ValueError, msgspec.DecodeError):
            raise ValidationFailed([("cursor", "not a cursor this server issued")], status=400) from None
