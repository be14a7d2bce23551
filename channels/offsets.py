"""Offsets (``<epoch>:<seq>``) and channel names: parsing and validation."""

from __future__ import annotations

import re
import secrets
from typing import NamedTuple

import msgspec

from channels.errors import InvalidChannel, InvalidOffset

__all__ = ["CHANNEL_KINDS", "ChannelName", "Offset", "new_epoch", "parse_offset", "validate_channel"]

CHANNEL_KINDS = ("user", "order", "store")

# fullmatch with explicit ASCII classes: `\d` would accept non-ASCII digits and `$` a trailing newline.
_OFFSET_RE = re.compile(r"([A-Za-z0-9_-]{1,32}):([0-9]{1,19})")
_CHANNEL_RE = re.compile(r"(user|order|store):([A-Za-z0-9_-]{1,64})")


class Offset(msgspec.Struct, frozen=True):
    """A position in a channel's history.

    Attributes:
        epoch: Names one life of the channel's history; a new one starts when history is lost.
        seq: Number of events published in this epoch (0 for an empty channel).
    """

    epoch: str
    seq: int

    def __str__(self) -> str:
        return f"{self.epoch}:{self.seq}"


def parse_offset(text: str) -> Offset:
    """Parse ``<epoch>:<seq>``.

    Raises:
        InvalidOffset: ``text`` is not an offset this server could have issued.
    """
    match = _OFFSET_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidOffset(f"malformed offset {text!r}: expected <epoch>:<seq>")
    return Offset(match.group(1), int(match.group(2)))


def new_epoch() -> str:
    """Return a fresh random epoch name (11 URL-safe characters)."""
    return secrets.token_urlsafe(8)


class ChannelName(NamedTuple):
    """A validated channel name split into its kind and id."""

    kind: str
    id: str


def validate_channel(name: str) -> ChannelName:
    """Check a channel name (``user:<id>``, ``order:<id>`` or ``store:<id>``).

    Returns:
        The name split into kind and id, for access checks.

    Raises:
        InvalidChannel: the name is malformed.
    """
    match = _CHANNEL_RE.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise InvalidChannel(f"malformed channel {name!r}: expected user:<id>, order:<id> or store:<id>")
    return ChannelName(match.group(1), match.group(2))
