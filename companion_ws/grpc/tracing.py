"""The gRPC door's spans (docs/observability.md): an interceptor that continues a call's
``traceparent`` metadata, kept beside the gRPC server so the hub imports grpc only when
it serves gRPC."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from companion_ws import telemetry

__all__ = ["TraceInterceptor"]


class TraceInterceptor(grpc.aio.ServerInterceptor):
    """A server span per unary gRPC call (``Publish``, ``GetState``, ``CallTool``...) and
    per ``StreamTask``, continuing the call's ``traceparent`` metadata. Streams that
    only read (``Subscribe``) are not spanned: they live as long as their reader."""

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if telemetry.tracer() is None or handler is None:
            return handler
        carrier = {
            str(k).lower(): v for k, v in (details.invocation_metadata or ()) if isinstance(v, str)
        }
        carrier.pop("authorization", None)
        method = str(details.method)
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: Any) -> Any:
                with _span(method, carrier, getattr(request, "session_id", None)) as span:
                    reply = await inner(request, context)
                    if isinstance(getattr(reply, "seq", None), int):
                        span.set_attribute(telemetry.SEQ, reply.seq)
                    return reply

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.stream_unary is not None:
            streamed = handler.stream_unary

            async def stream(requests: Any, context: Any) -> Any:
                with _span(method, carrier, None):
                    return await streamed(requests, context)

            return grpc.stream_unary_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler


def _span(method: str, carrier: Mapping[str, str], session_id: Any) -> Any:
    tracer = telemetry.tracer()
    if tracer is None:
        return contextlib.nullcontext(trace.INVALID_SPAN)
    attrs = {"rpc.system": "grpc", "rpc.method": method, telemetry.SESSION: session_id or None}
    return tracer.start_as_current_span(
        f"gRPC {method.rsplit('/', 1)[-1]}",
        context=propagate.extract(carrier),
        kind=SpanKind.SERVER,
        attributes=telemetry.attributes(attrs),
    )
