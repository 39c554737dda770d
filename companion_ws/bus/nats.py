"""NATS JetStream: the stream that covers ``<prefix>.in`` (or a new ``COMPANION`` over
``<prefix>.in``, ``<prefix>.dead`` and ``<prefix>.out.>``), read through one durable
pull consumer shared by every hub process, so each message is handled once."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from companion_ws.bus.base import BusConfig, Handler

__all__ = ["NatsBus"]

log = logging.getLogger("companion_ws.bus.nats")

RETRY_DELAY = 1.0  # a message its handler could not apply yet comes back after this


class NatsBus:
    def __init__(self, config: BusConfig) -> None:
        self._config = config
        self._in = f"{config.prefix}.in"
        self._dead = f"{config.prefix}.dead"
        self._out = f"{config.prefix}.out"
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self, handler: Handler) -> None:
        nc = await nats.connect(
            self._config.url, max_reconnect_attempts=-1, reconnect_time_wait=0.5, name="companion"
        )
        self._nc, self._js = nc, nc.jetstream()
        stream = await self._ensure_stream()
        sub = await self._js.pull_subscribe(
            self._in,
            durable=self._config.consumer,
            stream=stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self._config.ack_wait,
                max_ack_pending=10_000,
            ),
        )
        self._task = asyncio.create_task(self._consume(sub, handler), name="bus-nats")

    async def _ensure_stream(self) -> str:
        assert self._js is not None
        try:
            return await self._js.find_stream_name_by_subject(self._in)
        except NotFoundError:
            pass
        subjects = [self._in, self._dead, f"{self._out}.>"]
        await self._js.add_stream(
            StreamConfig(
                name=self._config.stream,
                subjects=subjects,
                max_msg_size=self._config.max_message_bytes,
            )
        )
        log.info("made the JetStream stream %s over %s", self._config.stream, subjects)
        return self._config.stream

    async def _consume(self, sub: JetStreamContext.PullSubscription, handler: Handler) -> None:
        while not self._stopping:
            try:
                msgs = await sub.fetch(self._config.batch, timeout=1.0)
            except NatsTimeout:
                continue
            except Exception as exc:
                if self._stopping:
                    return
                log.warning("fetching from %s failed: %s", self._in, exc)
                await asyncio.sleep(0.5)
                continue
            await asyncio.gather(*(self._one(msg, handler) for msg in msgs))

    async def _one(self, msg: Msg, handler: Handler) -> None:
        try:
            ok = await handler(msg.data)
        except Exception:
            log.exception("handling a bus message failed; it will be redelivered")
            ok = False
        try:
            if ok:
                await msg.ack()
            else:
                await msg.nak(delay=RETRY_DELAY)
        except Exception as exc:
            log.warning("acknowledging a bus message failed (%s); it will be redelivered", exc)

    async def close(self) -> None:
        self._stopping = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5.0)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()

    async def ping(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def dead(self, body: bytes) -> None:
        assert self._js is not None
        await self._js.publish(self._dead, body)

    async def out(self, session_id: str, seq: int, epoch: str, payload: bytes) -> None:
        assert self._js is not None
        # Several hubs may carry one session's events (Redis broker): JetStream keeps
        # the first of each message id.
        await self._js.publish(
            f"{self._out}.{session_id}",
            payload,
            headers={"Nats-Msg-Id": f"{session_id}:{epoch}:{seq}"},
        )
