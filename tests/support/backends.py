"""Test-side ends of the bus (NATS JetStream and Redis Streams, each under a prefix of
the test's own) and of gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import nats
import redis.asyncio as aioredis
from nats.js.api import ConsumerConfig, DeliverPolicy

from companion_ws.grpc.v1 import companion_pb2_grpc as pb_grpc
from tests.support.hub import HubProcess, free_port, token

NATS_URL = "nats://127.0.0.1:4222"
REDIS_BUS_URL = "redis://127.0.0.1:6379/3"


class BusProbe:
    """Publishes inbound messages and reads the dead-letter and outbound streams."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        tag = uuid.uuid4().hex[:10]
        self.prefix = f"t{tag}"
        self.stream = f"T{tag.upper()}"
        self.url = NATS_URL if kind == "nats" else REDIS_BUS_URL
        self._nc: Any = None
        self._js: Any = None
        self._redis: aioredis.Redis | None = None

    def env(self, ack_wait: float = 30.0) -> dict[str, str]:
        return {
            "COMPANION_BUS_URL": self.url,
            "COMPANION_BUS_PREFIX": self.prefix,
            "COMPANION_BUS_STREAM": self.stream,
            "COMPANION_BUS_ACK_WAIT": str(ack_wait),
        }

    async def open(self) -> BusProbe:
        if self.kind == "nats":
            self._nc = await nats.connect(NATS_URL)
            self._js = self._nc.jetstream()
        else:
            self._redis = aioredis.Redis.from_url(REDIS_BUS_URL)
        return self

    async def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._js.delete_stream(self.stream)
            await self._nc.close()
        if self._redis is not None:
            keys = [k async for k in self._redis.scan_iter(f"{self.prefix}:*")]
            if keys:
                await self._redis.delete(*keys)
            await self._redis.aclose()

    async def send(self, message: dict[str, Any] | bytes) -> None:
        body = message if isinstance(message, bytes) else json.dumps(message).encode()
        if self.kind == "nats":
            await self._js.publish(f"{self.prefix}.in", body)
        else:
            assert self._redis is not None
            await self._redis.xadd(f"{self.prefix}:in", {"data": body})

    async def _read(self, subject: str, key: str, want: int, timeout: float) -> list[Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self.kind == "nats":
                got = await self._nats_all(subject)
            else:
                assert self._redis is not None
                entries: Any = await self._redis.xrange(key)
                got = [json.loads(fields[b"data"]) for _, fields in entries]
            if len(got) >= want or loop.time() > deadline:
                return got
            await asyncio.sleep(0.1)

    async def _nats_all(self, subject: str) -> list[Any]:
        try:
            sub = await self._js.subscribe(
                subject,
                stream=self.stream,
                ordered_consumer=True,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
            )
        except Exception:
            return []  # no stream yet
        out: list[Any] = []
        try:
            info = await self._js.stream_info(self.stream)
            if info.state.messages == 0:
                return out
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.3)
                except Exception:
                    return out
                out.append(json.loads(msg.data))
        finally:
            await sub.unsubscribe()

    async def dead(self, want: int, timeout: float = 10.0) -> list[Any]:
        return await self._read(f"{self.prefix}.dead", f"{self.prefix}:dead", want, timeout)

    async def out(self, session_id: str, want: int, timeout: float = 10.0) -> list[Any]:
        got = await self._read(
            f"{self.prefix}.out.{session_id}", f"{self.prefix}:out", want, timeout
        )
        return [frame for frame in got if frame.get("session_id") == session_id]

    async def in_flight(self) -> int:
        """Messages taken and not acknowledged (NATS: ack pending; Redis: pending)."""
        if self.kind == "nats":
            info = await self._js.consumer_info(self.stream, "companion-hub")
            return int(info.num_ack_pending) + int(info.num_pending)
        assert self._redis is not None
        summary = await self._redis.xpending(f"{self.prefix}:in", "companion-hub")
        return int(summary["pending"])


async def new_session(hub: HubProcess, owner: str = "alice") -> str:
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=10) as http:
        r = await http.post("/sessions", headers={"Authorization": f"Bearer {token(owner)}"})
        assert r.status_code == 201, r.text
        sid: str = r.json()["session_id"]
        return sid


async def history(hub: HubProcess, session_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=10) as http:
        r = await http.get(
            f"/sessions/{session_id}/history",
            params={"after_seq": 0, "limit": 1000},
            headers={"Authorization": f"Bearer {token('root', admin=True)}"},
        )
        assert r.status_code == 200, r.text
        events: list[dict[str, Any]] = r.json()["events"]
        return events


def stub(port: int) -> tuple[grpc.aio.Channel, Any]:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    return channel, pb_grpc.SessionsStub(channel)


def bearer(sub: str = "alice", **kwargs: Any) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token(sub, **kwargs)}"),)


@contextlib.contextmanager
def grpc_hub(tmp: Path, env: dict[str, str] | None = None) -> Iterator[tuple[HubProcess, int]]:
    """A hub on SQLite serving gRPC too: (the hub, its gRPC port)."""
    port = free_port()
    hub = HubProcess(
        database_url=f"sqlite+aiosqlite:///{tmp / 'hub.db'}",
        env={"COMPANION_GRPC_PORT": str(port), **(env or {})},
        log_path=tmp / "hub.log",
    ).start()
    try:
        yield hub, port
    finally:
        hub.stop()


@contextlib.asynccontextmanager
async def grpc_api(port: int) -> AsyncIterator[Any]:
    """The ``Sessions`` stub on a channel of its own, closed after."""
    channel, client = stub(port)
    try:
        yield client
    finally:
        await channel.close()


async def status_of(call: Any, timeout: float = 10.0) -> grpc.StatusCode:
    """The status a gRPC call fails with (it must fail)."""
    try:
        await asyncio.wait_for(call, timeout)
    except grpc.aio.AioRpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    raise AssertionError("the call succeeded")
