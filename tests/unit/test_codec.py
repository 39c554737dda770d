"""companion_ws.protocol.codec: client frames decode to typed messages or a BadRequest."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from companion_ws.protocol import codec, frames
from companion_ws.protocol import messages as m
from companion_ws.protocol.errors import BadRequest, InvalidJSON, UnknownType
from tests.unit.strategies import json_objects, json_values, relaxed


def _decode_or_bad_request(data: str | bytes) -> None:
    with contextlib.suppress(BadRequest):
        codec.decode(data)


@relaxed
@given(st.binary(max_size=300))
# Bad UTF-8 inside a string: msgspec raises UnicodeDecodeError there, not DecodeError.
@example(b'{"type":"ping","requestId":"\xd8"}')
@example(b'{"type":"g\x80t_history"}')
def test_any_bytes_decode_or_raise_a_bad_request(data: bytes) -> None:
    _decode_or_bad_request(data)


def test_bad_utf8_inside_a_string_is_invalid_json() -> None:
    with pytest.raises(InvalidJSON, match="UTF-8"):
        codec.decode(b'{"type":"ping","requestId":"\xd8"}')
    assert codec.request_id_of(b'{"requestId":"\xd8"}') is None


@relaxed
@given(json_values)
def test_any_json_value_decodes_or_raises_a_bad_request(value: Any) -> None:
    _decode_or_bad_request(json.dumps(value))


_types = st.sampled_from([*sorted(m.MESSAGE_TYPES), "nope", ""])


@relaxed
@given(kind=_types, fields=json_objects)
def test_any_object_with_a_type_decodes_or_raises_a_bad_request(
    kind: str, fields: dict[str, Any]
) -> None:
    _decode_or_bad_request(json.dumps({**fields, "type": kind}))


_rid = st.none() | st.text(max_size=128)
_small = st.dictionaries(st.text(max_size=5), json_values, max_size=3)
valid_messages: st.SearchStrategy[m.ClientMessage] = st.one_of(
    st.builds(m.Ping, requestId=_rid),
    st.builds(m.GetSessionState, requestId=_rid),
    st.builds(
        m.UpdateSessionState,
        requestId=_rid,
        key=st.text(min_size=1, max_size=20),
        value=json_values,
        expected_version=st.none() | st.integers(0, 10**9),
    ),
    st.builds(m.UpdateSessionState, requestId=_rid, patch=_small),
    st.builds(m.ContextualUpdate, requestId=_rid, text=st.text(max_size=50), data=json_values),
    st.builds(
        m.ClientToolCall,
        requestId=_rid,
        client_tool_call=st.builds(
            m.ToolCall,
            tool_name=st.text(min_size=1, max_size=20),
            tool_call_id=st.text(min_size=1, max_size=20),
            parameters=_small,
        ),
        metadata=st.none() | _small,
    ),
    st.builds(
        m.Resume, requestId=_rid, last_seq=st.integers(0, 10**9), epoch=st.none() | st.text()
    ),
    st.builds(
        m.GetHistory, requestId=_rid, after_seq=st.integers(0, 10**9), limit=st.integers(1, 1000)
    ),
    st.builds(m.GetPresence, requestId=_rid),
    st.builds(m.EndSession, requestId=_rid),
)


@relaxed
@given(valid_messages)
def test_valid_messages_round_trip(message: m.ClientMessage) -> None:
    data = msgspec.json.encode(message)
    assert codec.decode(data) == message
    assert codec.decode(data.decode()) == message


def test_the_type_tag_selects_the_message_class() -> None:
    msg = codec.decode('{"type":"update_session_state","key":"ui.step","value":"quote"}')
    assert msg == m.UpdateSessionState(key="ui.step", value="quote")
    assert codec.decode('{"type":"ping","requestId":"r1"}') == m.Ping(requestId="r1")


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        ("not json", InvalidJSON, "invalid_json"),
        (b"\xff\xfe", InvalidJSON, "invalid_json"),
        ('{"type":"ping"', InvalidJSON, "invalid_json"),
        ("[1, 2]", BadRequest, "invalid_message"),
        ('"ping"', BadRequest, "invalid_message"),
        ("{}", BadRequest, "invalid_message"),
        ('{"type": 5}', BadRequest, "invalid_message"),
        ('{"type": "teleport"}', UnknownType, "unknown_type"),
        ('{"type": "resume", "last_seq": "x"}', BadRequest, "invalid_message"),
        ('{"type": "resume", "last_seq": -1}', BadRequest, "invalid_message"),
        ('{"type": "ping", "requestId": 7, "extra": 1}', BadRequest, "invalid_message"),
        ('{"type": "update_session_state", "key": 5, "x": 1}', BadRequest, "invalid_message"),
        ('{"type": "ping", "requestId": "' + "x" * 129 + '"}', BadRequest, "invalid_message"),
        ('{"type": "get_history", "limit": 1001}', BadRequest, "invalid_message"),
        ('{"type": "update_session_state", "patch": [1]}', BadRequest, "invalid_message"),
        (
            '{"type":"contextual_update","text":"x","data":' + "[" * 5000 + "]" * 5000 + "}",
            BadRequest,
            "invalid_message",
        ),
    ],
)
def test_bad_frames_raise_the_right_error(
    data: str | bytes, error: type[BadRequest], code: str
) -> None:
    with pytest.raises(error) as info:
        codec.decode(data)
    assert info.value.code == code


def test_unknown_fields_are_ignored_at_every_level() -> None:
    """docs/protocol.md v1.1: a newer client's extra fields do not break an older hub."""
    assert codec.decode('{"type": "ping", "colour": "blue", "requestId": "r"}') == m.Ping(
        requestId="r"
    )
    msg = codec.decode(
        '{"type":"client_tool_call","future":{"a":1},"client_tool_call":'
        '{"tool_name":"t","tool_call_id":"c","parameters":{},"new_field":[1]}}'
    )
    assert isinstance(msg, m.ClientToolCall)
    assert msg.client_tool_call == m.ToolCall(tool_name="t", tool_call_id="c")


def _nested(depth: int) -> str:
    """A JSON value of ``depth`` nested containers, objects and lists in turn."""
    opens = "".join('{"a":' if i % 2 else "[" for i in range(depth - 1))
    closes = "".join("}" if i % 2 else "]" for i in reversed(range(depth - 1)))
    return opens + "{}" + closes


def test_depth_64_is_the_limit_of_a_whole_frame() -> None:
    # The frame object is level 1, so its free-form field may hold 63 levels more.
    fits = '{"type":"update_session_state","patch":{"x":' + _nested(62) + "}}"
    assert isinstance(codec.decode(fits), m.UpdateSessionState)
    too_deep = '{"type":"update_session_state","patch":{"x":' + _nested(63) + "}}"
    with pytest.raises(BadRequest) as info:
        codec.decode(too_deep)
    assert info.value.code == "invalid_message" and "64" in info.value.message


@pytest.mark.parametrize(
    "template",
    [
        '{"type":"update_session_state","patch":{"x":%s}}',
        '{"type":"update_session_state","key":"k","value":%s}',
        '{"type":"contextual_update","text":"t","data":%s}',
        '{"type":"client_tool_call","client_tool_call":'
        '{"tool_name":"t","tool_call_id":"c","parameters":{"p":%s}}}',
        '{"type":"client_tool_call","client_tool_call":{"tool_name":"t","tool_call_id":"c"},'
        '"metadata":{"m":%s}}',
    ],
)
def test_a_950_deep_value_in_any_field_is_invalid_message(template: str) -> None:
    with pytest.raises(BadRequest) as info:
        codec.decode(template % _nested(950))
    assert type(info.value) is BadRequest and info.value.code == "invalid_message"


def test_an_unknown_field_is_skipped_not_walked() -> None:
    """An ignored field is never built nor walked, however deep (msgspec skips it), up
    to msgspec's own recursion limit, past which the frame is invalid_message too."""
    assert codec.decode('{"type":"ping","x":' + _nested(950) + "}") == m.Ping()
    with pytest.raises(BadRequest):
        codec.decode('{"type":"ping","x":' + _nested(20000) + "}")


def test_decode_body_checks_the_depth_of_plain_json() -> None:
    assert codec.decode_body(_nested(64)) is not None
    for depth in (65, 950, 20000):
        with pytest.raises(BadRequest):
            codec.decode_body(_nested(depth))
    assert codec.decode_body("[1, 2]") == [1, 2]


def test_request_id_of_a_bad_frame_is_recovered_when_it_is_sane() -> None:
    assert codec.request_id_of('{"type":"teleport","requestId":"r9"}') == "r9"
    assert codec.request_id_of('{"type":"x","requestId":"' + "x" * 129 + '"}') is None
    assert codec.request_id_of('{"requestId": 5}') is None
    assert codec.request_id_of("nope") is None
    assert codec.request_id_of("[1]") is None


def test_frame_carries_type_session_timestamp_and_request_id() -> None:
    out = json.loads(codec.encode(frames.Pong(session_id="s1", requestId="r1")))
    assert out["type"] == "pong" and out["session_id"] == "s1" and out["requestId"] == "r1"
    assert isinstance(out["timestamp"], int) and out["timestamp"] > 1_600_000_000_000
    assert "requestId" not in json.loads(codec.encode(frames.Pong(session_id="s1")))


def test_optional_fields_are_left_out_and_required_ones_always_written() -> None:
    update = frames.ContextualUpdate(session_id="s", text="hi")
    out = json.loads(codec.encode(update))
    assert out["data"] is None and out["sender"] is None and "requestId" not in out
    assert frames.ContextualUpdate.broadcast and not frames.Pong.broadcast
    assert frames.BROADCAST_TYPES.isdisjoint(frames.DIRECT_TYPES)


@relaxed
@given(seq=st.integers(1, 2**62), fields=json_objects)
def test_with_seq_splices_the_number_into_the_encoded_frame(
    seq: int, fields: dict[str, Any]
) -> None:
    body = codec.encode(frames.ContextualUpdate(session_id="s", text="t", data=fields))
    spliced = codec.with_seq(body, seq)
    assert codec.seq_of(spliced) == seq
    assert json.loads(spliced) == {"seq": seq, **json.loads(body)}


def test_seq_of_refuses_an_unsequenced_frame() -> None:
    with pytest.raises(ValueError):
        codec.seq_of(b'{"type":"pong"}')
