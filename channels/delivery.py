"""What a connection is sent for a channel: event messages, epoch resets, replays, and the duplicate check.

The hub (``channels/hub.py``) decides who gets what; these build the messages once and queue them on a
connection in offset order: ``deliver`` skips what a connection's cursor shows it already has, and
``replay`` queues a resume's history in parts when it is larger than the room in the send queue.
"""

from __future__ import annotations

from datetime import datetime

from channels.broker import BrokerEvent
from channels.connection import Connection
from channels.offsets import Offset
from channels.outgoing import Outgoing
from channels.protocol import Event, Ref, Subscribed, encode_server_message

__all__ = ["deliver", "event_message", "replay", "subscribed_message"]


def _published_at(ts: str) -> float | None:
    try:
        return datetime.fromisoformat(ts).timestamp()
    except ValueError:
        return None


def event_message(event: BrokerEvent, *, live: bool) -> Outgoing:
    """Encode a broker event once into the wire ``event`` message."""
    offset = str(event.offset) if event.offset is not None else None
    payload = encode_server_message(Event(event.channel, offset, event.type, event.data, event.ts))
    coalesce = live and event.type == "tracking.location"
    published_at = event.published_at if event.published_at is not None else _published_at(event.ts)
    return Outgoing(payload, "event", event.channel, event.offset, event.type, published_at, coalesce)


def subscribed_message(channel: str, offset: Offset, *, recovered: bool, replayed: int, ref: Ref = None) -> Outgoing:
    """The ``subscribed`` message, built here only: a subscribe's answer and every epoch reset share it.

    It carries ``offset`` so that ``deliver`` orders it among the channel's events: with
    ``recovered: false`` it tells the client the channel's history goes on from ``offset`` in a new sequence.
    """
    message = Subscribed(channel=channel, offset=str(offset), recovered=recovered, replayed=replayed, ref=ref)
    return Outgoing(encode_server_message(message), "control", channel, offset)


def deliver(conn: Connection, item: Outgoing, cursor: Offset | None) -> Offset | None:
    """Queue ``item`` unless ``cursor`` shows it was already sent; return the new cursor.

    The one rule of who gets what on a channel (live fan-out, held events, gap fills): it runs once
    per recipient of every event, so the common case, an offset new to this connection, comes first.
    """
    offset = item.offset
    if offset is None:
        conn.enqueue(item)
        return cursor
    if cursor is None or (offset.epoch == cursor.epoch and offset.seq > cursor.seq):
        conn.enqueue(item)
        return offset
    if offset.epoch == cursor.epoch:
        return cursor  # already sent (replayed, or relayed by a gap fill) to this connection
    if item.kind == "event":
        # A new epoch this connection was not told about yet.
        resume_at = Offset(offset.epoch, offset.seq - 1)
        conn.enqueue(subscribed_message(item.channel or "", resume_at, recovered=False, replayed=0))
    conn.enqueue(item)
    return offset


async def replay(conn: Connection, events: list[BrokerEvent]) -> None:
    """Queue replayed events in order, waiting for room when the send queue cannot take the next one."""
    for event in events:
        item = event_message(event, live=False)
        size = len(item.payload)
        if not conn.fits(size) and not await conn.wait_for_room(size):
            return
        if not conn.enqueue(item):
            return  # closed (overflow: enqueue found the transport's buffer over the limit)
