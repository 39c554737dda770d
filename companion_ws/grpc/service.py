"""``companion.v1.Sessions``: a thin adapter over the node's services, the same ones the
socket and the HTTP API take (one publish path, one tool runner, one resume).

Credentials: ``authorization: Bearer JWT`` metadata, with the HTTP API's rules: the
session's owner, an admin, or a service (docs/protocol.md section 15); a device's token reads
its session while its device is neither revoked nor expired (section 11). Errors are
the error tree's, as status codes (:mod:`companion_ws.grpc.errors`).

``Subscribe`` and ``StreamTask`` each hold a ticket of the node's streams (shared with
the AG-UI streams): at most ``COMPANION_MAX_STREAMS_PER_USER`` per user
(``RESOURCE_EXHAUSTED``), and a call ends when its credential does (``UNAUTHENTICATED``
at ``exp`` plus the refresh grace; ``PERMISSION_DENIED`` when its device is revoked) and
when its session ends (the call completes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import grpc

from companion_ws.auth.policy import Action
from companion_ws.auth.tokens import Principal, TokenService
from companion_ws.grpc.errors import status_of
from companion_ws.grpc.v1 import companion_pb2 as pb
from companion_ws.grpc.v1 import companion_pb2_grpc as pb_grpc
from companion_ws.hub.idempotent import MAX_KEY
from companion_ws.hub.node import Node
from companion_ws.hub.streams import Ticket
from companion_ws.protocol import frames as f
from companion_ws.protocol.backend import backend_frame
from companion_ws.protocol.codec import JSON_ERRORS, decode_body, encode
from companion_ws.protocol.errors import BadRequest, CompanionError, NotFound, Unauthorized
from companion_ws.values import Event, Session

__all__ = ["SessionsService"]

log = logging.getLogger("companion_ws.grpc")

T = TypeVar("T")
REPLAY_PAGE = 256


class SessionsService(pb_grpc.SessionsServicer):  # type: ignore[misc]
    def __init__(self, node: Node, tokens: TokenService) -> None:
        self._node = node
        self._tokens = tokens

    # ---------------------------------------------------------------- plumbing

    async def _guard(self, context: grpc.aio.ServicerContext[Any, Any], call: Awaitable[T]) -> T:
        try:
            return await call
        except CompanionError as exc:
            await context.abort(status_of(exc), exc.message)
            raise AssertionError("unreachable") from exc

    def _principal(self, context: grpc.aio.ServicerContext[Any, Any]) -> Principal:
        header = ""
        for key, value in context.invocation_metadata() or ():
            if key.lower() == "authorization":
                header = value if isinstance(value, str) else value.decode()
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send the metadata authorization: Bearer <token>")
        who = self._tokens.verify(token.strip())
        if who.is_join:
            raise Unauthorized("a join token only opens a WebSocket")
        return who

    async def _session(
        self, context: grpc.aio.ServicerContext[Any, Any], session_id: str, *, live: bool
    ) -> tuple[Principal, Session]:
        who = self._principal(context)
        if not session_id:
            raise BadRequest("session_id is required")
        # The HTTP API's role table: a write (or a stream of the agent's words) needs the
        # owner, a service or an admin; a read, any role in the session. And the HTTP
        # API's credential check: a revoked or expired device is refused.
        row = await self._node.sessions.authorize(
            who, session_id, Action.WRITE if live else Action.READ
        )
        if live and row.ended_at is not None:
            raise NotFound(f"the session {session_id!r} has ended")
        return who, row

    # ---------------------------------------------------------------- unary calls

    async def Publish(
        self, request: pb.PublishRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.PublishResponse:
        return await self._guard(context, self._publish(request, context))

    async def _publish(
        self, request: pb.PublishRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.PublishResponse:
        who, _ = await self._session(context, request.session_id, live=True)
        if len(request.idempotency_key) > MAX_KEY:
            raise BadRequest(f"idempotency_key is longer than {MAX_KEY} characters")
        frame = backend_frame(
            request.session_id,
            request.type,
            _json_object(request.data_json or "{}", "data_json"),
            request_id=request.correlation_id or None,
            sender=f"backend:{who.sub}",
        )
        done = await self._node.backend.publish(frame, request.idempotency_key or None)
        return pb.PublishResponse(
            session_id=done.session_id, seq=done.seq, epoch=done.epoch, duplicate=done.duplicate
        )

    async def GetState(
        self, request: pb.GetStateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.State:
        return await self._guard(context, self._get_state(request, context))

    async def _get_state(
        self, request: pb.GetStateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.State:
        await self._session(context, request.session_id, live=False)
        position, doc = await self._node.recovery.snapshot(request.session_id)
        return pb.State(
            session_id=request.session_id,
            version=doc.version,
            seq=position.seq,
            state_json=encode(doc.state).decode(),
        )

    async def UpdateState(
        self, request: pb.UpdateStateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.State:
        return await self._guard(context, self._update_state(request, context))

    async def _update_state(
        self, request: pb.UpdateStateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.State:
        who, _ = await self._session(context, request.session_id, live=True)
        patch = _json_object(request.patch_json, "patch_json")
        expected = request.expected_version if request.HasField("expected_version") else None
        doc = await self._node.state.update(
            request.session_id, patch, expected_version=expected, sender=f"backend:{who.sub}"
        )
        position, _ = await self._node.recovery.snapshot(request.session_id)
        return pb.State(
            session_id=request.session_id,
            version=doc.version,
            seq=position.seq,
            state_json=encode(doc.state).decode(),
        )

    async def CallTool(
        self, request: pb.ToolRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ToolResponse:
        return await self._guard(context, self._call_tool(request, context))

    async def _call_tool(
        self, request: pb.ToolRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ToolResponse:
        who, _ = await self._session(context, request.session_id, live=True)
        if not request.tool_call_id or len(request.tool_call_id) > MAX_KEY:
            raise BadRequest(f"tool_call_id is required, at most {MAX_KEY} characters")
        if not request.tool_id:
            raise BadRequest("tool_id is required")
        if request.parameters_json:
            parameters = _json_object(request.parameters_json, "parameters_json")
        else:
            parameters = {k: _loose_json(v) for k, v in request.parameters.items()}
        outcome = await self._node.tools.call(
            request.session_id,
            request.tool_id,
            request.tool_call_id,
            parameters,
            sender=f"backend:{who.sub}",
        )
        error = ""
        if outcome.is_error:
            body = _loose_json(outcome.result)
            error = str(body.get("error", body)) if isinstance(body, dict) else str(body)
        return pb.ToolResponse(
            success=not outcome.is_error,
            result=outcome.result,
            error=error,
            session_id=request.session_id,
            tool_call_id=request.tool_call_id,
            replayed=outcome.replayed,
        )

    # ---------------------------------------------------------------- streams

    async def StreamTask(
        self, requests: AsyncIterator[pb.TaskChunk], context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.TaskResponse:
        return await self._guard(context, self._stream_task(requests, context))

    async def _stream_task(
        self, requests: AsyncIterator[pb.TaskChunk], context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.TaskResponse:
        chunks = aiter(requests)
        first = await anext(chunks, None)
        if first is None:
            raise BadRequest("an empty stream: send at least one chunk")
        if not first.task_id:
            raise BadRequest("the first chunk needs task_id and session_id")
        who, _ = await self._session(context, first.session_id, live=True)
        async with self._node.streams.open(who, first.session_id) as ticket:
            return await self._task(chunks, first, f"backend:{who.sub}", ticket)

    async def _task(
        self, chunks: AsyncIterator[pb.TaskChunk], first: pb.TaskChunk, sender: str, ticket: Ticket
    ) -> pb.TaskResponse:
        """The chunks as the agent's one message, until the last one, the end of the
        call, or the ticket's close (its credential cut: the call fails with the
        reason; its session ended: the call completes, unsuccessful)."""
        task_id, session_id = first.task_id, first.session_id
        text, final = "", False
        chunk: pb.TaskChunk | None = first
        while chunk is not None:
            if (chunk.task_id or task_id) != task_id or (
                chunk.session_id or session_id
            ) != session_id:
                raise BadRequest("every chunk of a stream belongs to one task and session")
            if final:
                raise BadRequest("a chunk after the final one")
            if ticket.closed.is_set():
                break
            text += chunk.content
            final = chunk.is_final
            await self._transcript(session_id, task_id, text, final, sender)
            step = await _unless(anext(chunks, None), ticket.closed)
            chunk = None if step is _CLOSED else step  # type: ignore[assignment]
        if ticket.closed.is_set():
            if ticket.cut.is_set():
                assert ticket.reason is not None
                raise ticket.reason
            return pb.TaskResponse(
                task_id=task_id,
                output=text,
                success=False,
                error="the session ended",
                session_id=session_id,
            )
        if not final:  # the stream closed: the message is complete
            await self._transcript(session_id, task_id, text, True, sender)
        return pb.TaskResponse(task_id=task_id, output=text, success=True, session_id=session_id)

    async def _transcript(
        self, session_id: str, task_id: str, text: str, final: bool, sender: str
    ) -> None:
        frame = f.Transcript(
            session_id=session_id,
            role="agent",
            message_id=task_id,
            text=text,
            final=final,
            sender=sender,
        )
        await self._node.backend.publish(frame)

    async def Subscribe(
        self, request: pb.SubscribeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.Event]:
        """Replay after ``after_seq``, then live, with no gap and no repeat: the watch
        is registered before the replay, and live events at or below the cursor are
        skipped; a live event past a gap is preceded by the history that fills it."""
        try:
            who, _ = await self._session(context, request.session_id, live=False)
            sid, after = request.session_id, request.after_seq
            if after < 0:
                raise BadRequest("after_seq must be >= 0")
            async with (
                self._node.streams.open(who, sid) as ticket,
                self._node.listeners.watch(sid) as watch,
            ):
                if not await self._node.recovery.resumable(sid, after, request.epoch or None):
                    await context.abort(
                        grpc.StatusCode.OUT_OF_RANGE,
                        "after_seq is outside the kept history (or of another epoch): "
                        "read the state with GetState, then subscribe from its seq",
                    )
                cursor = after
                while True:
                    async for event in self._replay(sid, cursor):
                        await _check(context, ticket)
                        cursor = event.seq
                        yield event
                        if event.type == "session_ended":
                            return
                    live = await _unless(watch.get(), ticket.cut)
                    await _check(context, ticket)
                    if live is None:
                        await context.abort(
                            grpc.StatusCode.UNAVAILABLE, "this subscriber fell behind; resubscribe"
                        )
                        return
                    assert isinstance(live, Event)
                    if live.seq <= cursor:
                        continue
                    if live.seq > cursor + 1:
                        continue  # the next loop's replay fills the gap and includes it
                    cursor = live.seq
                    yield pb.Event(
                        session_id=sid,
                        seq=live.seq,
                        type=live.kind,
                        frame_json=live.payload.decode(),
                        epoch=live.epoch,
                    )
                    if live.kind == "session_ended":
                        return
        except CompanionError as exc:
            await context.abort(status_of(exc), exc.message)

    async def _replay(self, sid: str, cursor: int) -> AsyncIterator[pb.Event]:
        while True:
            page = await self._node.recovery.history(sid, cursor, REPLAY_PAGE)
            for frame in page.events:
                cursor = int(frame["seq"])
                yield pb.Event(
                    session_id=sid,
                    seq=cursor,
                    type=str(frame.get("type", "")),
                    frame_json=encode(frame).decode(),
                    epoch=page.epoch,
                )
            if not page.has_more or not page.events:
                return


_CLOSED = object()


async def _unless(step: Awaitable[T], closed: asyncio.Event) -> T | object:
    """What ``step`` answers, or ``_CLOSED`` once ``closed`` is set (``step`` is then
    cancelled, or its answer dropped: the call is ending)."""
    getter = asyncio.ensure_future(step)
    closer = asyncio.ensure_future(closed.wait())
    try:
        await asyncio.wait({getter, closer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (closer, getter):
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
    if closed.is_set():
        if not getter.cancelled():
            getter.exception()  # retrieved: an answer nobody reads any more
        return _CLOSED
    return getter.result()


async def _check(context: grpc.aio.ServicerContext[Any, Any], ticket: Ticket) -> None:
    """End the call with the reason once its credential is cut."""
    if ticket.cut.is_set():
        assert ticket.reason is not None
        await context.abort(status_of(ticket.reason), ticket.reason.message)


def _json_object(text: str, name: str) -> dict[str, Any]:
    """A request's JSON object field, depth-checked as every door's (``decode_body``)."""
    try:
        value = decode_body(text)
    except JSON_ERRORS:
        raise BadRequest(f"{name} is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be a JSON object")
    return value


def _loose_json(text: str) -> Any:
    """A parameter value: its JSON value when it parses (depth-checked at the level of
    a value in the parameters object), else the string itself."""
    try:
        return decode_body(text, depth=2)
    except JSON_ERRORS:
        return text
