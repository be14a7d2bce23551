"""Exceptions raised by the real-time relay.

Hierarchy::

    ChannelsError                 base of everything this package raises on purpose
    ├── InvalidOffset (+ValueError)   an offset string is not ``<epoch>:<seq>``
    ├── InvalidChannel (+ValueError)  a channel name is not ``user|order|store:<id>``
    ├── ProtocolError (+ValueError)   a client frame is not a valid protocol message
    ├── InvalidEvent (+ValueError)    an event is not a valid producer envelope (``reason`` says why)
    └── BrokerError                   the broker failed to do what was asked
        └── BrokerUnavailable         the broker's server (Redis) cannot be reached right now
"""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "BrokerUnavailable",
    "ChannelsError",
    "InvalidChannel",
    "InvalidEvent",
    "InvalidOffset",
    "ProtocolError",
]


class ChannelsError(Exception):
    """Base class of every error raised by the ``channels`` package."""


class InvalidOffset(ChannelsError, ValueError):
    """An offset string is malformed (expected ``<epoch>:<seq>``)."""


class InvalidChannel(ChannelsError, ValueError):
    """A channel name is malformed (expected ``user:<id>``, ``order:<id>`` or ``store:<id>``)."""


class ProtocolError(ChannelsError, ValueError):
    """A client frame is not valid JSON or not a known protocol message.

    ``ref`` is the frame's own ``ref`` when it had one, for the error that answers it.
    """

    def __init__(self, message: str, ref: int | str | None = None) -> None:
        super().__init__(message)
        self.ref = ref


class InvalidEvent(ChannelsError, ValueError):
    """An event is not a valid producer envelope (SPEC "Producers:"); it is never relayed.

    Raised to producers (``Publisher.publish``, ``Broker.publish``); a broker that receives such a
    message drops and counts it instead.

    Attributes:
        reason: A short, stable code for metrics and logs: one of ``channels.envelope.DROP_REASONS``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class BrokerError(ChannelsError):
    """The broker could not carry out an operation."""


class BrokerUnavailable(BrokerError):
    """The broker's backing server (Redis) is unreachable; retry later."""
