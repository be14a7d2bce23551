"""Limits on untrusted JSON: nesting depth and NUL characters, checked on the raw bytes.

msgspec (like every recursive decoder) raises ``RecursionError`` on JSON nested a few thousand
levels deep, and PostgreSQL refuses U+0000 in text and JSON columns. Both are bad input, never a
server error: REST bodies (``app``), ``/ws`` client frames and producer envelopes are checked here
before they are decoded, in C-speed passes over the bytes so that the common, small, shallow
message pays one ``count`` per bracket kind.
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate
from typing import Any

__all__ = ["MAX_DEPTH", "field_path", "find_nul", "nesting_depth", "too_deep", "top_level"]

MAX_DEPTH = 32
"""SPEC: JSON nested deeper than this is bad input (REST bodies, client frames, producer events)."""

# A JSON string, escapes included (the unrolled form: no backtracking per character).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# After the other bytes are deleted: an opening bracket counts +1, a closing one -1 (as signed bytes).
_TO_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NUL_ESCAPE = b"\\u0000"
# The tokens that matter to nesting: strings (skipped whole), brackets, and runs of anything else.
_OPENING = (b"[", b"{")
_CLOSING = (b"]", b"}")
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[{]|[\]}]|[^"\[\]{}]+', re.DOTALL)


def nesting_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in ``raw`` (brackets inside strings do not count).

    Malformed JSON gets a number too (unbalanced brackets count as they come); its decoder refuses it.
    """
    steps = _STRING.sub(b"", raw).translate(_TO_STEPS, _NOT_BRACKETS)
    if not steps:
        return 0
    return max(accumulate(array("b", steps), initial=0))


def too_deep(raw: bytes | str, limit: int = MAX_DEPTH) -> bool:
    """Whether ``raw`` nests arrays and objects deeper than ``limit``."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= limit:
        return False  # the common case: too few brackets to be that deep
    return nesting_depth(data) > limit


def top_level(raw: bytes) -> bytes:
    """``raw`` with every value nested inside a top-level member replaced by ``null``.

    What is left decodes without recursion however deep the original went, so the members of a
    refused document (a client frame's ``ref``) can still be read. Linear in the size of ``raw``.
    """
    out: list[bytes] = []
    depth = 0
    for token in _TOKEN.findall(raw):
        if token in _OPENING:
            depth += 1
            if depth <= 2:
                out.append(token if depth == 1 else b"null")
        elif token in _CLOSING:
            if depth == 1:
                out.append(token)
            depth -= 1
        elif depth <= 1:
            out.append(token)
    return b"".join(out)


def find_nul(raw: bytes, value: Any) -> str | None:
    """The path (``title``, ``items[2].name``) of the first string in ``value`` holding U+0000.

    Args:
        raw: The JSON text ``value`` was decoded from; without a ``\\u0000`` escape there is no NUL,
            so the walk is skipped.
        value: The decoded value (its depth already bounded).

    Returns:
        The path, ``""`` for a top-level string, or ``None`` when no string (key or value) holds NUL.
    """
    if _NUL_ESCAPE not in raw:
        return None
    return _walk(value, ())


def field_path(parts: tuple[str | int, ...]) -> str:
    """``("items", 2, "name")`` -> ``items[2].name``: how a field is named in problem+json errors."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _walk(value: Any, parts: tuple[str | int, ...]) -> str | None:
    if isinstance(value, str):
        return field_path(parts) if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return field_path((*parts, key.replace("\x00", "\\u0000")))
            found = _walk(item, (*parts, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _walk(item, (*parts, index))
            if found is not None:
                return found
    return None
