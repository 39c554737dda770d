"""The backends' adapters (docs/protocol.md section 15), started after the node and stopped
before it: the gRPC server when ``grpc_port`` is set, the bus bridge when ``bus_url`` is."""

from __future__ import annotations

import contextlib

from companion_ws.auth.tokens import TokenService
from companion_ws.hub.node import Node
from companion_ws.settings import Settings

__all__ = ["start_backends"]


async def start_backends(
    settings: Settings, node: Node, tokens: TokenService
) -> contextlib.AsyncExitStack:
    """Start what the settings ask for; closing the stack stops them, newest first."""
    stack = contextlib.AsyncExitStack()
    try:
        if settings.bus_url:
            from companion_ws.bus import BusConfig, make_bus
            from companion_ws.bus.bridge import BusBridge

            bridge = BusBridge(
                node,
                make_bus(
                    BusConfig(
                        url=settings.bus_url,
                        prefix=settings.bus_prefix,
                        stream=settings.bus_stream,
                        consumer=settings.bus_consumer,
                        ack_wait=settings.bus_ack_wait,
                        max_message_bytes=settings.max_body_bytes,
                    )
                ),
                max_message_bytes=settings.max_body_bytes,
            )
            stack.push_async_callback(bridge.stop)
            await bridge.start()
        if settings.grpc_port is not None:
            from companion_ws.grpc.server import GrpcServer

            server = GrpcServer(
                node,
                tokens,
                host=settings.grpc_host,
                port=settings.grpc_port,
                max_message_bytes=settings.max_body_bytes,
            )
            await server.start()
            stack.push_async_callback(server.stop)
    except BaseException:
        await stack.aclose()
        raise
    return stack
