"""The gRPC server in the hub process: started and stopped by the app's lifespan."""

from __future__ import annotations

import logging
from typing import Any

import grpc

from companion_ws.auth.tokens import TokenService
from companion_ws.grpc.service import SessionsService
from companion_ws.grpc.tracing import TraceInterceptor
from companion_ws.grpc.v1 import companion_pb2_grpc as pb_grpc
from companion_ws.hub.node import Node

__all__ = ["GrpcServer", "KeyInterceptor"]

log = logging.getLogger("companion_ws.grpc")

STOP_GRACE = 2.0


class KeyInterceptor(grpc.aio.ServerInterceptor):
    """The JWKS fetched off the event loop before a call's token is verified, if it needs
    it (docs/protocol.md section 8): the gRPC door's :class:`KeyGate`."""

    def __init__(self, tokens: TokenService) -> None:
        self._tokens = tokens

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        if self._tokens.jwks is not None:
            for key, value in details.invocation_metadata or ():
                if key.lower() == "authorization":
                    text = value if isinstance(value, str) else value.decode()
                    await self._tokens.ensure_key(text.partition(" ")[2].strip())
        return await continuation(details)


class GrpcServer:
    def __init__(
        self, node: Node, tokens: TokenService, *, host: str, port: int, max_message_bytes: int
    ) -> None:
        self._service = SessionsService(node, tokens)
        self._tokens = tokens
        self._address = f"{host}:{port}"
        # A request larger than this (COMPANION_MAX_BODY_BYTES, as for an HTTP body) is
        # refused RESOURCE_EXHAUSTED by gRPC before it is buffered whole (its default: 4 MiB).
        self._options = [("grpc.max_receive_message_length", max_message_bytes)]
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        server = grpc.aio.server(
            options=self._options, interceptors=[TraceInterceptor(), KeyInterceptor(self._tokens)]
        )
        pb_grpc.add_SessionsServicer_to_server(self._service, server)
        if server.add_insecure_port(self._address) == 0:
            raise RuntimeError(f"gRPC could not listen on {self._address}")
        await server.start()
        self._server = server
        log.info("gRPC listening on %s", self._address)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(STOP_GRACE)
            self._server = None
