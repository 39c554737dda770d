"""The gRPC server in the hub process: started and stopped by the app's lifespan."""

from __future__ import annotations

import logging

import grpc

from companion_ws.auth.tokens import TokenService
from companion_ws.grpc.service import SessionsService
from companion_ws.grpc.v1 import companion_pb2_grpc as pb_grpc
from companion_ws.hub.node import Node

__all__ = ["GrpcServer"]

log = logging.getLogger("companion_ws.grpc")

STOP_GRACE = 2.0


class GrpcServer:
    def __init__(
        self, node: Node, tokens: TokenService, *, host: str, port: int, max_message_bytes: int
    ) -> None:
        self._service = SessionsService(node, tokens)
        self._address = f"{host}:{port}"
        # A request larger than this (COMPANION_MAX_BODY_BYTES, as for an HTTP body) is
        # refused RESOURCE_EXHAUSTED by gRPC before it is buffered whole (its default: 4 MiB).
        self._options = [("grpc.max_receive_message_length", max_message_bytes)]
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        server = grpc.aio.server(options=self._options)
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
