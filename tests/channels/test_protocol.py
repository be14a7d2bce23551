"""Wire messages, offsets and channel names."""

from __future__ import annotations

import msgspec
import pytest

from channels import (
    Error,
    Event,
    InvalidChannel,
    InvalidOffset,
    Offset,
    Ping,
    ProtocolError,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Welcome,
    decode_client_message,
    encode_server_message,
    parse_offset,
    validate_channel,
)
from channels.jsonlimits import top_level


def test_decodes_every_client_message() -> None:
    """subscribe, unsubscribe and ping decode with and without their optional fields."""
    assert decode_client_message('{"op":"subscribe","channel":"order:o1","since":"e:3","ref":7}') == Subscribe(
        "order:o1", "e:3", 7
    )
    assert decode_client_message(b'{"op":"subscribe","channel":"user:u1"}') == Subscribe("user:u1")
    assert decode_client_message('{"op":"unsubscribe","channel":"order:o1","ref":"a"}') == Unsubscribe("order:o1", "a")
    assert decode_client_message('{"op":"ping"}') == Ping()


def test_unknown_fields_are_ignored() -> None:
    """A newer client's extra fields do not break decoding."""
    assert decode_client_message('{"op":"ping","ref":1,"future":true}') == Ping(1)


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"{",
        b"[]",
        b'"ping"',
        b'{"channel":"order:1"}',
        b'{"op":"publish","channel":"order:1"}',
        b'{"op":"subscribe"}',
        b'{"op":"subscribe","channel":5}',
        b'{"op":"subscribe","channel":"order:1","since":3}',
        b'{"op":"ping","ref":1.5}',
        b'{"op":"ping","ref":[1]}',
    ],
)
def test_bad_frames_raise_protocol_error(frame: bytes) -> None:
    """Malformed JSON, unknown ops and wrong types raise ProtocolError with a message."""
    with pytest.raises(ProtocolError) as info:
        decode_client_message(frame)
    assert str(info.value)


@pytest.mark.parametrize("frame", ['{"op":"ping","x":' + "[" * 2000 + "]" * 2000 + "}", "[" * 33 + "]" * 33])
def test_deeply_nested_frames_raise_protocol_error(frame: str) -> None:
    """Nesting past 32 levels is a ProtocolError, checked before decoding (2,000 levels would recurse)."""
    with pytest.raises(ProtocolError, match="nested deeper than 32"):
        decode_client_message(frame)
    with pytest.raises(ProtocolError, match="nested deeper than 32"):
        decode_client_message(frame.encode())


@pytest.mark.parametrize(
    ("frame", "ref"),
    [
        (b'{"op":"teleport","ref":7}', 7),
        (b'{"ref":"r"}', "r"),
        (b'{"op":"subscribe","channel":5,"ref":3}', 3),
        (b'{"ref":4,"op":"ping","x":' + b"[" * 2000 + b"]" * 2000 + b"}", 4),
        (b'{"op":"x","data":{"ref":5,"s":"]}"},"ref":6}', 6),  # the top-level ref, brackets in strings ignored
        (b'{"op":"ping","ref":1.5}', None),
        (b'[{"ref":1}]', None),
        (b'{"ref":1', None),
    ],
)
def test_protocol_error_carries_the_frame_ref(frame: bytes, ref: object) -> None:
    """A refused frame's ``ref`` is on the error when the frame is an object with a valid one, however deep."""
    with pytest.raises(ProtocolError) as info:
        decode_client_message(frame)
    assert info.value.ref == ref


def test_top_level_cuts_nested_values_only() -> None:
    """``top_level`` keeps top-level members and replaces what is nested in them by null."""
    assert top_level(b'{"a":{"b":[1,{"c":"]}"}]},"ref":"x]","n":[[]]}') == b'{"a":null,"ref":"x]","n":null}'
    assert top_level(b"[1,[2],3]") == b"[1,null,3]"
    assert top_level(b'"just a string"') == b'"just a string"'


def test_server_messages_omit_unset_optional_fields() -> None:
    """Optional fields are absent, not null, and names are camelCase."""
    assert encode_server_message(Welcome(user_id="u_1", channels=["user:u_1"])) == (
        b'{"op":"welcome","userId":"u_1","channels":["user:u_1"]}'
    )
    subscribed = Subscribed(channel="order:o", offset="e:0", recovered=True, replayed=0)
    assert msgspec.json.decode(encode_server_message(subscribed)) == {
        "op": "subscribed",
        "channel": "order:o",
        "offset": "e:0",
        "recovered": True,
        "replayed": 0,
    }
    error = Error(code="forbidden", message="no", ref=7)
    assert msgspec.json.decode(encode_server_message(error)) == {
        "op": "error",
        "code": "forbidden",
        "message": "no",
        "ref": 7,
    }


def test_event_offset_null_is_present() -> None:
    """An event without offset carries "offset": null and its data verbatim."""
    event = Event("order:o", None, "t", msgspec.Raw(b'{"lat":1.5}'), "2024-01-01T00:00:00.000Z")
    assert encode_server_message(event) == (
        b'{"op":"event","channel":"order:o","offset":null,"type":"t","data":{"lat":1.5},'
        b'"ts":"2024-01-01T00:00:00.000Z"}'
    )


@pytest.mark.parametrize("text", ["abc:0", "a-b_C9:12345", "x" * 32 + ":7"])
def test_offsets_parse_and_print(text: str) -> None:
    """Well-formed offsets round-trip through str()."""
    assert str(parse_offset(text)) == text


@pytest.mark.parametrize(
    "text",
    # the last one ends in an Arabic-Indic digit, which str.isdigit() would accept
    [
        "",
        "abc",
        ":1",
        "abc:",
        "abc:-1",
        "abc:+1",
        "abc: 1",
        "abc:1 ",
        "abc:1\n",
        "a.b:1",
        "x" * 33 + ":1",
        "a:1:2",
        "a:\u0661",
    ],
)
def test_malformed_offsets_raise(text: str) -> None:
    """Anything but <epoch>:<digits> raises InvalidOffset, which is also a ValueError."""
    with pytest.raises(InvalidOffset):
        parse_offset(text)
    with pytest.raises(ValueError):
        parse_offset(text)


def test_offset_str() -> None:
    """Offset prints as <epoch>:<seq>."""
    assert str(Offset("e1", 42)) == "e1:42"


@pytest.mark.parametrize("name", ["user:u_1", "order:ord-123", "store:" + "s" * 64])
def test_valid_channels(name: str) -> None:
    """user:, order: and store: names with a short id are valid and split into kind and id."""
    kind, ident = validate_channel(name)
    assert f"{kind}:{ident}" == name


@pytest.mark.parametrize(
    "name", ["", "user", "user:", "admin:1", "order:a b", "order:" + "x" * 65, "order:1:2", "Order:1", "user:é"]
)
def test_invalid_channels(name: str) -> None:
    """Other names raise InvalidChannel."""
    with pytest.raises(InvalidChannel):
        validate_channel(name)
