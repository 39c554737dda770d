"""OpenTelemetry traces (companion_ws/telemetry.py, docs/observability.md): spans for a
connect, a frame's publish, a tool call, a resume and the HTTP, gRPC and bus doors, with
the session id and seq and never a token, continuing the caller's traceparent; recorded
with the SDK's in-memory exporter."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from companion_ws import telemetry
from companion_ws.grpc.v1 import companion_pb2 as pb
from tests.support.backends import BusProbe, stub
from tests.support.frames import eventually, new_user, say, tool_answer, tool_call
from tests.support.hub import free_port, token
from tests.support.inproc import InProcessHub, inprocess_hub

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT}-01"
QUOTE = {"from_zip": "90210", "to_zip": "10001", "weight": 5}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.install(provider)
    try:
        yield exporter
    finally:
        telemetry.install(None)


@pytest.fixture
async def hub(
    tmp_path: Path, spans: InMemorySpanExporter
) -> AsyncIterator[tuple[InProcessHub, int, BusProbe]]:
    probe = await BusProbe("redis").open()
    port = free_port()
    try:
        async with inprocess_hub(
            f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
            grpc_port=port,
            bus_url=probe.url,
            bus_prefix=probe.prefix,
            bus_stream=probe.stream,
        ) as running:
            yield running, port, probe
    finally:
        await probe.close()


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def parent_of(exporter: InMemorySpanExporter, span: ReadableSpan) -> ReadableSpan:
    assert span.parent is not None, span.name
    (found,) = [
        s for s in exporter.get_finished_spans() if s.context.span_id == span.parent.span_id
    ]
    return found


def published_at(exporter: InMemorySpanExporter, seq: int) -> list[ReadableSpan]:
    """The ``companion.publish`` spans of the event ``seq``."""
    return [s for s in named(exporter, "companion.publish") if attrs(s).get(telemetry.SEQ) == seq]


async def service_session(inproc: InProcessHub) -> tuple[str, str]:
    """A service token and a session it created over HTTP."""
    service = token("svc", service=True)
    created = await inproc.http.post("/sessions", headers={"authorization": f"Bearer {service}"})
    return service, created.json()["session_id"]


def no_tokens(exporter: InMemorySpanExporter, *secrets: str) -> None:
    for span in exporter.get_finished_spans():
        for value in attrs(span).values():
            assert not any(secret in str(value) for secret in secrets), (span.name, value)


async def test_a_connect_and_a_frame_are_spans_down_to_the_publish_and_its_seq(
    hub: tuple[InProcessHub, int, BusProbe], spans: InMemorySpanExporter
) -> None:
    inproc, _, _ = hub
    user = new_user()
    bearer_token = token(user)
    ws = await inproc.connect(bearer_token)
    sid = ws.welcome["session_id"]
    echo = await say(ws, "hello")
    (connect,) = named(spans, "companion.connect")
    assert attrs(connect)[telemetry.SESSION] == sid
    (frame,) = [
        s
        for s in named(spans, "companion.ws.frame")
        if attrs(s)["companion.type"] == "contextual_update"
    ]
    published = published_at(spans, echo["seq"])
    assert len(published) == 1 and parent_of(spans, published[0]) is frame
    assert attrs(published[0])[telemetry.SESSION] == sid
    assert attrs(frame)[telemetry.SESSION] == sid

    answer = await tool_answer(ws, tool_call("get_shipping_quotes", QUOTE))
    assert answer["type"] == "client_tool_result", answer
    (tool,) = named(spans, "companion.tool")
    assert attrs(tool)["companion.tool"] == "get_shipping_quotes"
    assert attrs(tool)[telemetry.SESSION] == sid
    assert any(parent_of(spans, s) is tool for s in named(spans, "companion.publish"))

    again = await inproc.connect(
        bearer_token, session_id=sid, last_seq=echo["seq"], epoch=ws.welcome["epoch"]
    )
    await again.recv_type("resumed")
    (resume,) = named(spans, "companion.resume")
    assert attrs(resume) == {telemetry.SESSION: sid, "companion.last_seq": echo["seq"]}
    no_tokens(spans, bearer_token)


async def test_an_http_publish_continues_the_callers_trace(
    hub: tuple[InProcessHub, int, BusProbe], spans: InMemorySpanExporter
) -> None:
    inproc, _, _ = hub
    service, sid = await service_session(inproc)
    headers = {"authorization": f"Bearer {service}"}
    r = await inproc.http.post(
        f"/sessions/{sid}/events",
        json={"text": "from a backend"},
        headers={**headers, "traceparent": TRACEPARENT},
    )
    assert r.status_code == 201, r.text
    (door,) = [s for s in named(spans, "HTTP POST") if attrs(s)["url.path"].endswith("/events")]
    assert format(door.context.trace_id, "032x") == TRACE_ID
    assert door.parent is not None and format(door.parent.span_id, "016x") == PARENT
    assert attrs(door)[telemetry.SESSION] == sid
    assert attrs(door)["http.response.status_code"] == 201
    (published,) = published_at(spans, r.json()["seq"])
    assert parent_of(spans, published) is door
    no_tokens(spans, service)


async def test_a_grpc_publish_continues_the_callers_trace(
    hub: tuple[InProcessHub, int, BusProbe], spans: InMemorySpanExporter
) -> None:
    inproc, port, _ = hub
    service, sid = await service_session(inproc)
    channel, api = stub(port)
    try:
        reply = await api.Publish(
            pb.PublishRequest(
                session_id=sid, type="contextual_update", data_json=json.dumps({"text": "rpc"})
            ),
            metadata=(("authorization", f"Bearer {service}"), ("traceparent", TRACEPARENT)),
            timeout=10,
        )
    finally:
        await channel.close()
    (door,) = named(spans, "gRPC Publish")
    assert format(door.context.trace_id, "032x") == TRACE_ID
    assert attrs(door)[telemetry.SESSION] == sid and attrs(door)[telemetry.SEQ] == reply.seq
    (published,) = published_at(spans, reply.seq)
    assert published.context.trace_id == door.context.trace_id
    no_tokens(spans, service)


async def test_a_bus_message_continues_its_traceparent(
    hub: tuple[InProcessHub, int, BusProbe], spans: InMemorySpanExporter
) -> None:
    inproc, _, probe = hub
    _, sid = await service_session(inproc)
    await probe.send(
        {"session_id": sid, "type": "contextual_update", "text": "bus", "traceparent": TRACEPARENT}
    )
    await eventually(lambda: bool(named(spans, "companion.bus")), timeout=10)
    (door,) = named(spans, "companion.bus")
    assert format(door.context.trace_id, "032x") == TRACE_ID
    assert attrs(door)[telemetry.SESSION] == sid
    await eventually(
        lambda: any(
            s.context.trace_id == door.context.trace_id for s in named(spans, "companion.publish")
        ),
        timeout=10,
    )


def test_traces_are_off_unless_the_otel_variables_ask() -> None:
    assert not telemetry.wanted({})
    assert not telemetry.wanted({"OTEL_SERVICE_NAME": "x"})
    assert not telemetry.wanted({"OTEL_TRACES_EXPORTER": "none"})
    assert not telemetry.wanted(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
    )
    assert telemetry.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert telemetry.wanted({"OTEL_TRACES_EXPORTER": "console"})
    assert telemetry.configure({}) is None and not telemetry.enabled()
