"""Real-time relay, framework-free: wire protocol, brokers, history and resume, hub, publisher.

Imports neither Litestar nor Piccolo nor ``app``/``models``. See docs/channels.md.
"""

from __future__ import annotations

from channels.broker import Broker, BrokerEvent, BrokerStats, History, Resync, utc_timestamp
from channels.connection import CLOSE_TOO_SLOW, CloseTransport, Connection, SendFrame
from channels.delivery import subscribed_message
from channels.envelope import DROP_REASONS, EVENT_MAX_BYTES, parse_event, validate_event
from channels.errors import (
    BrokerError,
    BrokerUnavailable,
    ChannelsError,
    InvalidChannel,
    InvalidEvent,
    InvalidOffset,
    ProtocolError,
)
from channels.frames import FrameSink, text_frame
from channels.hub import Hub, Subscription
from channels.memory import MemoryBroker
from channels.metrics import HubMetrics, LatencyHistogram
from channels.offsets import ChannelName, Offset, parse_offset, validate_channel
from channels.outgoing import FrameFormatter, Outgoing
from channels.protocol import (
    ClientMessage,
    Error,
    Event,
    Ping,
    Pong,
    ServerMessage,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
    Welcome,
    decode_client_message,
    encode_server_message,
)
from channels.publisher import Publisher
from channels.redis import RedisBroker
from channels.redis_connector import RedisClient, RedisConnector
from channels.redis_target import RedisTarget, parse_redis_url

__all__ = [
    "CLOSE_TOO_SLOW",
    "DROP_REASONS",
    "EVENT_MAX_BYTES",
    "Broker",
    "BrokerError",
    "BrokerEvent",
    "BrokerStats",
    "BrokerUnavailable",
    "ChannelName",
    "ChannelsError",
    "ClientMessage",
    "CloseTransport",
    "Connection",
    "Error",
    "Event",
    "FrameFormatter",
    "FrameSink",
    "History",
    "Hub",
    "HubMetrics",
    "InvalidChannel",
    "InvalidEvent",
    "InvalidOffset",
    "LatencyHistogram",
    "MemoryBroker",
    "Offset",
    "Outgoing",
    "Ping",
    "Pong",
    "ProtocolError",
    "Publisher",
    "RedisBroker",
    "RedisClient",
    "RedisConnector",
    "RedisTarget",
    "Resync",
    "SendFrame",
    "ServerMessage",
    "Subscribe",
    "Subscribed",
    "Subscription",
    "Unsubscribe",
    "Unsubscribed",
    "Welcome",
    "decode_client_message",
    "encode_server_message",
    "parse_event",
    "parse_offset",
    "parse_redis_url",
    "subscribed_message",
    "text_frame",
    "utc_timestamp",
    "validate_channel",
    "validate_event",
]
