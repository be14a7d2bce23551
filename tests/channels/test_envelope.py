"""The producer envelope rules (SPEC "Producers:"): parse_event for listeners, validate_event for producers."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import msgspec
import pytest

from channels import DROP_REASONS, EVENT_MAX_BYTES, InvalidEvent, Offset, parse_event, utc_timestamp, validate_event
from channels.drops import DropLog
from channels.envelope import check_json, encode_envelope

DATA = b'{"orderId":"ord_1","lat":52.5,"lng":13.4}'


def nested(depth: int) -> bytes:
    """An object ``depth`` levels deep: {"a":{"a":...{}}}."""
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def reason_of(payload: bytes, max_bytes: int = EVENT_MAX_BYTES) -> str:
    with pytest.raises(InvalidEvent) as raised:
        parse_event("order:o1", payload, max_bytes)
    assert raised.value.reason in DROP_REASONS
    return raised.value.reason


def test_a_valid_envelope_keeps_its_data_undecoded() -> None:
    """type, data (the very bytes), ts and offset come out as sent; offset parsed."""
    payload = b'{"offset":"ep0:7","type":"tracking.location","data":%s,"ts":"2024-01-02T03:04:05.678Z"}' % DATA
    event = parse_event("order:o1", payload)
    assert (event.channel, event.offset, event.type, event.ts) == (
        "order:o1",
        Offset("ep0", 7),
        "tracking.location",
        "2024-01-02T03:04:05.678Z",
    )
    assert bytes(event.data) == DATA


def test_a_bare_envelope_is_stamped_now() -> None:
    """Without ts the event gets one (RFC 3339 UTC) and no offset."""
    event = parse_event("order:o1", b'{"type":"order.created","data":{}}')
    assert event.offset is None and event.ts.endswith("Z") and len(event.ts) == 24


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"type":"order.created","data":{"s":"\xff"}}', "not_utf8"),
        (b'{"type":"order.created","data":{"s":"\xed\xa0\x80"}}', "not_utf8"),  # an encoded surrogate
        (b"not json", "not_json"),
        (b'{"type":"order.created","data":{}', "not_json"),
        (b"[1, 2]", "not_envelope"),
        (b'{"data":{}}', "bad_type"),
        (b'{"type":5,"data":{}}', "bad_type"),
        (b'{"type":"x","data":{}}', "bad_type"),  # one word: no dot
        (b'{"type":"Order.Created","data":{}}', "bad_type"),
        (b'{"type":"order..created","data":{}}', "bad_type"),
        (b'{"type":"order.created\\n","data":{}}', "bad_type"),
        (b'{"type":"a.%s","data":{}}' % (b"b" * 63), "bad_type"),  # 65 characters
        (b'{"type":"order.created"}', "bad_data"),
        (b'{"type":"order.created","data":"a string"}', "bad_data"),
        (b'{"type":"order.created","data":[1]}', "bad_data"),
        (b'{"type":"order.created","data":null}', "bad_data"),
        (b'{"type":"order.created","data":{},"ts":"garbage"}', "bad_ts"),
        (b'{"type":"order.created","data":{},"ts":"2024-01-02T03:04:05"}', "bad_ts"),  # no offset
        (b'{"type":"order.created","data":{},"ts":"2024-02-30T03:04:05Z"}', "bad_ts"),
        (b'{"type":"order.created","data":{},"ts":5}', "bad_ts"),
        (b'{"offset":"no","type":"order.created","data":{}}', "bad_offset"),
        (b'{"type":"order.created","data":%s}' % nested(32), "too_deep"),  # 33 with the envelope
        (b'{"type":"order.created","data":%s}' % (b"[" * 5000 + b"]" * 5000), "too_deep"),
        (b'{"type":"a.%s","data":{}}' % (b"b" * 100_000), "too_large"),
    ],
)
def test_invalid_messages_are_refused_with_their_reason(payload: bytes, reason: str) -> None:
    """Each SPEC rule has its own reason; nothing raises anything but InvalidEvent (no RecursionError)."""
    assert reason_of(payload) == reason


def test_depth_limit_is_32_for_the_whole_envelope() -> None:
    """data 31 levels deep inside the envelope (32 in all) is valid."""
    event = parse_event("order:o1", b'{"type":"order.created","data":%s}' % nested(31))
    assert bytes(event.data) == nested(31)


def test_pretty_printed_data_is_compacted_to_one_line() -> None:
    """Raw newlines between tokens are removed (same value), so the message cannot split a frame."""
    data = {"orderId": "o1", "items": [{"n": 1}, {"n": 2}], "note": "two\nlines"}
    payload = json.dumps({"type": "order.created", "data": data, "ts": "2024-01-02T03:04:05Z"}, indent=2).encode()
    event = parse_event("order:o1", payload)
    assert b"\n" not in bytes(event.data)
    assert msgspec.json.decode(event.data) == data


def test_size_limit_is_the_whole_envelope_without_our_offset() -> None:
    """A producer envelope of exactly max_bytes passes, one byte more does not; our offset is not counted."""
    max_bytes = 2048
    filler = max_bytes - len(encode_envelope("a.b", b'{"s":""}', "2024-01-02T03:04:05.678Z"))
    exact = encode_envelope("a.b", b'{"s":"%s"}' % (b"x" * filler), "2024-01-02T03:04:05.678Z")
    assert len(exact) == max_bytes
    assert parse_event("order:o1", exact, max_bytes).type == "a.b"
    with_offset = b'{"offset":"abcdefghijk:123456",' + exact[1:]
    assert parse_event("order:o1", with_offset, max_bytes).offset == Offset("abcdefghijk", 123456)
    one_more = exact.replace(b'"s":"', b'"s":"x')
    assert reason_of(one_more, max_bytes) == "too_large"
    assert reason_of(b'{"offset":"abcdefghijk:123456",' + one_more[1:], max_bytes) == "too_large"


def test_validate_event_refuses_what_parse_event_would_drop() -> None:
    """Type, data shape, depth, UTF-8, ts and size are refused at the producer, with a message naming the rule."""
    cases = [
        (("Bad", b"{}", None), "bad_type", "lower-case words joined by dots"),
        (("a.b", b'"text"', None), "bad_data", "object"),
        (("a.b", b"[1]", None), "bad_data", "object"),
        (("a.b", nested(32), None), "too_deep", "nested"),
        (("a.b", b'{"s":"\xff"}', None), "not_utf8", "UTF-8"),
        (("a.b", b"{}", "yesterday"), "bad_ts", "RFC 3339"),
        (("a.b", b'{"s":"%s"}' % (b"x" * EVENT_MAX_BYTES), None), "too_large", "EVENT_MAX_BYTES"),
    ]
    for (type_, data, ts), reason, words in cases:
        with pytest.raises(InvalidEvent, match=words) as raised:
            validate_event(type_, data, ts)
        assert raised.value.reason == reason


def test_validate_event_size_matches_the_encoded_envelope() -> None:
    """The size validate_event computes is the encoded envelope's length, stamped ts included."""
    for ts in (None, "2024-01-02T03:04:05.678+02:00"):
        envelope = encode_envelope("a.b", b'{"s":"xyz"}', ts)
        validate_event("a.b", b'{"s":"xyz"}', ts, max_bytes=len(envelope))
        with pytest.raises(InvalidEvent):
            validate_event("a.b", b'{"s":"xyz"}', ts, max_bytes=len(envelope) - 1)


def test_validate_event_compacts_pretty_printed_data() -> None:
    """Data bytes with newlines come back on one line, the same value."""
    assert validate_event("a.b", b'{\n  "a": [1,\n 2]\n}') == b'{"a":[1,2]}'
    assert validate_event("a.b", DATA) is DATA  # the common case: untouched


def test_check_json_refuses_garbage_and_depth_before_decoding() -> None:
    """Not JSON is not_json; 10,000 levels is too_deep, not a RecursionError."""
    with pytest.raises(InvalidEvent) as raised:
        check_json(b"{nope")
    assert raised.value.reason == "not_json"
    with pytest.raises(InvalidEvent) as raised:
        check_json(b"[" * 10_000 + b"]" * 10_000)
    assert raised.value.reason == "too_deep"


def test_drop_log_counts_every_drop_and_logs_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    """A flood is counted in full; one line per reason per second, the next one carrying the count in between."""
    now = [100.0]
    counts: dict[str, int] = {}
    drops = DropLog(counts, logging.getLogger("test.drops"), clock=lambda: now[0])
    caplog.set_level(logging.WARNING, "test.drops")
    bad_ts = InvalidEvent("bad_ts", "ts 'x' is not RFC 3339")
    for _ in range(1000):
        drops.drop("order:o1", bad_ts, b'{"ts":"x"}')
    drops.drop("order:o2", InvalidEvent("not_json", "not JSON"), b"garbage")
    assert counts == {"bad_ts": 1000, "not_json": 1}
    assert len(caplog.records) == 2
    assert "order:o1" in caplog.records[0].getMessage() and "bad_ts" in caplog.records[0].getMessage()
    now[0] += 1.0
    drops.drop("order:o1", bad_ts, b'{"ts":"x"}')
    assert len(caplog.records) == 3 and "+999 more bad_ts" in caplog.records[2].getMessage()


def test_ts_is_parsed_once_and_handed_to_the_hub() -> None:
    """parse_event's published_at is ts as a UNIX time (the hub's latency metric does not parse ts again)."""
    event = parse_event("order:o1", b'{"type":"a.b","data":{},"ts":"2024-01-02T03:04:05.678+01:00"}')
    assert event.published_at == datetime(2024, 1, 2, 2, 4, 5, 678000, tzinfo=UTC).timestamp()
    stamped = parse_event("order:o1", b'{"type":"a.b","data":{}}')
    assert stamped.published_at is not None and utc_timestamp(stamped.published_at) == stamped.ts


@pytest.mark.parametrize("at", [0.0, 1.999, 1_700_000_000.123456, 1_700_000_059.5, 4_102_444_799.25])
def test_utc_timestamp_formats_like_isoformat(at: float) -> None:
    """The cached-second stamp equals datetime's RFC 3339 text with milliseconds and Z."""
    expected = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert utc_timestamp(at) == expected
