"""OpenTelemetry traces (docs/observability.md): off unless the standard ``OTEL_*``
variables turn them on, and then spans for a connect, a frame from its arrival to its
commit and fan-out (``companion.publish``), a tool call, a resume, and the HTTP, gRPC and
bus doors, with the session id and seq as attributes and never a token.

The doors continue the caller's trace: an HTTP request's and a gRPC call's
``traceparent`` (W3C trace context, or whatever ``OTEL_PROPAGATORS`` names), and a bus
message's ``traceparent`` field, are the parent of the door's span, and the event it
publishes is processed inside it.

Each door has a one-line hook here: a decorator (:func:`traced`), the HTTP wrapper
(:func:`http_door`), the gRPC interceptor (``companion_ws.grpc.tracing``). With tracing off
they cost one test of a module global. Only ``opentelemetry-api`` is required; the SDK
and the OTLP exporter are the ``[otel]`` extra. Metrics stay Prometheus (``/metrics``).
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

__all__ = [
    "attributes",
    "configure",
    "enabled",
    "http_door",
    "install",
    "traced",
    "tracer",
    "wanted",
]

log = logging.getLogger("companion_ws.telemetry")

TRACER_NAME = "companion_ws"
SESSION = "companion.session_id"
SEQ = "companion.seq"

_tracer: trace.Tracer | None = None  # None: tracing is off

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
Attrs = Mapping[str, Any]


def enabled() -> bool:
    return _tracer is not None


def tracer() -> trace.Tracer | None:
    """The tracer the hooks use; ``None`` while tracing is off."""
    return _tracer


def install(provider: trace.TracerProvider | None) -> None:
    """Trace with ``provider`` from now on (``None``: off). Tests install one with an
    in-memory exporter; :func:`configure` installs the one ``OTEL_*`` describes."""
    global _tracer
    _tracer = provider.get_tracer(TRACER_NAME) if provider is not None else None


def wanted(env: Mapping[str, str]) -> bool:
    """Whether ``env`` turns traces on: ``OTEL_TRACES_EXPORTER`` (other than ``none``)
    or an OTLP endpoint, unless ``OTEL_SDK_DISABLED=true``. [pure]"""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure(env: Mapping[str, str]) -> str | None:
    """Turn traces on if ``env`` asks (:func:`wanted`): the SDK's tracer provider with a
    batch processor per exporter in ``OTEL_TRACES_EXPORTER`` (``otlp``, the default, or
    ``console``), made the global provider. Answers a line for the operator: what runs,
    or why nothing does; ``None`` when traces are not asked for."""
    if not wanted(env):
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        return (
            "OTEL_* asks for traces but opentelemetry-sdk is not installed: "
            "pip install 'companion-ws[otel]'; tracing is off"
        )
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    exporters = []
    for name in names:
        try:
            exporters.append(_exporter(name, env))
        except (ImportError, ValueError) as exc:
            return f"traces are off: {exc}"
    defaults = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": "companion-ws"}
    provider = TracerProvider(resource=Resource.create(defaults))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    install(provider)
    return f"traces: on, exported to {', '.join(names)}"


def _exporter(name: str, env: Mapping[str, str]) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise ValueError(
            f"OTEL_TRACES_EXPORTER={name} is not one companion-ws knows (otlp, console)"
        )
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    transport = "grpc" if protocol == "grpc" else "http"
    module = f"opentelemetry.exporter.otlp.proto.{transport}.trace_exporter"
    try:
        exporter = importlib.import_module(module).OTLPSpanExporter
    except ImportError:
        raise ImportError(
            f"the OTLP exporter ({protocol}) is not installed: pip install 'companion-ws[otel]'"
        ) from None
    return exporter()


def attributes(attrs: Attrs) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if isinstance(v, str | int | float | bool)}


def traced(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attrs: Callable[..., Attrs] | None = None,
    after: Callable[[Any], Attrs] | None = None,
    carrier: Callable[..., Mapping[str, Any] | None] | None = None,
) -> Callable[[F], F]:
    """An async function in a span ``name``: ``attrs(*args, **kwargs)`` and
    ``after(result)`` its attributes; ``carrier(*args, **kwargs)`` the caller's trace
    context (a ``traceparent``) to continue. An exception is recorded on the span."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        async def inner(*args: Any, **kwargs: Any) -> Any:
            tracer = _tracer
            if tracer is None:
                return await fn(*args, **kwargs)
            parent = None
            if carrier is not None:
                headers = carrier(*args, **kwargs)
                parent = propagate.extract(headers) if headers else None
            first = attributes(attrs(*args, **kwargs)) if attrs is not None else None
            with tracer.start_as_current_span(
                name, context=parent, kind=kind, attributes=first
            ) as span:
                result = await fn(*args, **kwargs)
                if after is not None:
                    span.set_attributes(attributes(after(result)))
                return result

        return inner  # type: ignore[return-value]

    return wrap


# ---------------------------------------------------------------- attributes, by hook


def publish_attrs(_self: Any, frame: Any, **_: Any) -> Attrs:
    """Publisher.publish(frame): a Sealed frame has its kind; a frame struct its tag."""
    kind = getattr(frame, "kind", None) or _tag(frame)
    return {SESSION: getattr(frame, "session_id", None), "companion.type": kind}


def event_attrs(event: Any) -> Attrs:
    return {SEQ: getattr(event, "seq", None), "companion.epoch": getattr(event, "epoch", None)}


def frame_attrs(_self: Any, conn: Any, msg: Any, *_: Any) -> Attrs:
    """Commands.handle(conn, msg): a frame that arrived on a socket."""
    return {
        SESSION: getattr(conn, "session_id", None),
        "companion.type": _tag(msg),
        "companion.request_id": getattr(msg, "request_id", None),
    }


def connect_attrs(_self: Any, principal: Any, **kwargs: Any) -> Attrs:
    """Admission.join: the session asked for, the client kind, the resume point."""
    return {
        SESSION: kwargs.get("requested"),
        "companion.client": kwargs.get("client"),
        "companion.last_seq": kwargs.get("last_seq"),
    }


def joined_attrs(conn: Any) -> Attrs:
    return {
        SESSION: getattr(conn, "session_id", None),
        "companion.role": str(getattr(conn, "role", "")),
    }


def resume_attrs(_self: Any, conn: Any, last_seq: int, *_: Any, **__: Any) -> Attrs:
    return {SESSION: getattr(conn, "session_id", None), "companion.last_seq": last_seq}


def tool_attrs(
    _self: Any, session_id: str, tool_name: str, tool_call_id: str, *_: Any, **kw: Any
) -> Attrs:
    return {
        SESSION: session_id,
        "companion.tool": tool_name,
        "companion.tool_call_id": tool_call_id,
        "companion.sender": kw.get("sender"),
    }


def tool_result_attrs(result: Any) -> Attrs:
    return {"companion.is_error": bool(getattr(result, "is_error", False))}


def bus_attrs(_self: Any, message: Mapping[str, Any]) -> Attrs:
    return {
        SESSION: message.get("session_id"),
        "companion.type": message.get("type"),
        "companion.correlation_id": message.get("correlation_id"),
        "messaging.operation.type": "process",
    }


def bus_carrier(_self: Any, message: Mapping[str, Any]) -> Mapping[str, Any]:
    """A bus message's trace context: its ``traceparent`` (and ``tracestate``) fields."""
    return {
        k: v
        for k, v in message.items()
        if k in ("traceparent", "tracestate") and isinstance(v, str)
    }


# The hooks: one decorator line on each door's function.
on_connect = traced("companion.connect", attrs=connect_attrs, after=joined_attrs)
on_frame = traced("companion.ws.frame", attrs=frame_attrs)
on_publish = traced("companion.publish", attrs=publish_attrs, after=event_attrs)
on_resume = traced("companion.resume", attrs=resume_attrs)
on_tool_call = traced("companion.tool", attrs=tool_attrs, after=tool_result_attrs)
on_bus_message = traced(
    "companion.bus", kind=SpanKind.CONSUMER, attrs=bus_attrs, carrier=bus_carrier
)


def _tag(struct: Any) -> str | None:
    config = getattr(type(struct), "__struct_config__", None)
    tag = getattr(config, "tag", None)
    return tag if isinstance(tag, str) else None


# ---------------------------------------------------------------- the HTTP door


def _session_of(path: str) -> str | None:
    parts = path.strip("/").split("/")
    return parts[1] if len(parts) >= 2 and parts[0] in ("sessions", "agui") else None


def http_door(app: Any) -> Any:
    """``app`` with a server span per HTTP request (method, path, status; the session id
    of a ``/sessions/{id}`` path), continuing the request's ``traceparent``; ``app`` as
    it is when tracing is off. The query string (it may hold a token) is never recorded."""
    if _tracer is None:
        return app

    async def door(scope: Any, receive: Any, send: Any) -> None:
        tracer = _tracer
        if scope["type"] != "http" or tracer is None:
            await app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        headers.pop("authorization", None)
        method, path = scope.get("method", "GET"), scope.get("path", "")
        attrs = {"http.request.method": method, "url.path": path, SESSION: _session_of(path)}
        with tracer.start_as_current_span(
            f"HTTP {method}",
            context=propagate.extract(headers),
            kind=SpanKind.SERVER,
            attributes=attributes(attrs),
        ) as span:

            async def sending(message: Any) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", int(message["status"]))
                await send(message)

            await app(scope, receive, sending)

    return door
