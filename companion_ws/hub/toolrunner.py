"""The tool runner: one effect per id, for every path (a socket's ``client_tool_call``,
an ElevenLabs server tool, the post-call webhook, the agent bridge).

The order is the guarantee: the effect's state change, its ledger row and the
broadcasts it owes commit in one transaction, *then* those broadcasts are published. A
repeat of the id, or a redelivery after a crash anywhere in between, finds the ledger
row and answers the stored result: the effect never happens twice; and what the crash
left unpublished is published once, by the repeat or any process's sweep
(:mod:`companion_ws.hub.owed`).

A tool run (:meth:`ToolRunner.call`) is also framed for every screen by
``tool_call_started`` and ``tool_call_finished`` (docs/protocol.md section 13), and the task
its tool declares it starts or completes rides its state patch.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from companion_ws import failpoints, telemetry
from companion_ws.hub.locks import KeyedLock
from companion_ws.hub.owed import Owed
from companion_ws.hub.publisher import Publisher, Sealed
from companion_ws.hub.state import StateService, changed
from companion_ws.metrics import Metrics
from companion_ws.protocol import frames as f
from companion_ws.protocol.codec import encode, now_ms
from companion_ws.protocol.errors import CompanionError, Internal, SessionMismatch
from companion_ws.store.effects import LedgerRow, Recorded, StateRow, Verdict
from companion_ws.store.store import Store
from companion_ws.tools.registry import ToolError, ToolOutcome, ToolRegistry
from companion_ws.values import Event
from ui_state import StateDoc

__all__ = ["Compute", "ToolResult", "ToolRunner"]

log = logging.getLogger("companion_ws.tools")

#: What an effect computes from the session's state: a patch, a result, an update.
Compute = Callable[[StateDoc], Awaitable[ToolOutcome]]


@dataclass(frozen=True, slots=True)
class ToolResult:
    tool_call_id: str
    result: str  # JSON text, as the ElevenLabs protocol wants
    is_error: bool
    replayed: bool = False
    # What this run published, in seq order (none on a replay): a tool run's
    # tool_call_started, its state change and update, its tool_call_finished.
    events: tuple[Event, ...] = ()


class ToolRunner:
    def __init__(
        self,
        store: Store,
        state: StateService,
        publisher: Publisher,
        registry: ToolRegistry,
        locks: KeyedLock,
        metrics: Metrics,
        owed: Owed,
    ) -> None:
        self._owed = owed
        self._store = store
        self._state = state
        self._publisher = publisher
        self._registry = registry
        self._locks = locks
        self._metrics = metrics

    def knows(self, tool_name: str) -> bool:
        """Whether a tool of this name is registered."""
        return self._registry.get(tool_name) is not None

    @telemetry.on_tool_call
    async def call(
        self,
        session_id: str,
        tool_name: str,
        tool_call_id: str,
        parameters: dict[str, Any],
        *,
        sender: str | None = None,
        request_id: str | None = None,
    ) -> ToolResult:
        """Run a registered tool once per ``tool_call_id``. The adapter has checked any
        session the call names (a bare id or the agent capability)."""
        tool = self._registry.get(tool_name)
        if tool is None:
            self._metrics.tool_calls.labels("unknown", "not_found").inc()
            return ToolResult(tool_call_id, _json({"error": f"no tool named {tool_name!r}"}), True)

        async def compute(doc: StateDoc) -> ToolOutcome:
            outcome = await tool.run(doc.state, parameters)
            # The task the tool starts or completes rides the tool's own patch (one commit).
            tasks = tool.task_change(doc.state, task_id=uuid.uuid4().hex, now=now_ms())
            if tasks is None:
                return outcome
            return replace(outcome, patch={**(outcome.patch or {}), **tasks})

        outcome = await self.once(
            session_id,
            tool_call_id,
            tool_name,
            compute,
            sender=sender,
            request_id=request_id,
            lifecycle=True,
        )
        if not outcome.replayed:
            self._metrics.tool_calls.labels(tool_name, "error" if outcome.is_error else "ok").inc()
        return outcome

    async def once(
        self,
        session_id: str,
        key: str,
        name: str,
        compute: Compute,
        *,
        sender: str | None = None,
        request_id: str | None = None,
        lifecycle: bool = False,
    ) -> ToolResult:
        """The effect ``compute`` once per ``key``: ledger, state and the broadcasts it
        owes in one commit, then those broadcasts. A repeat answers the stored result,
        ``replayed``, once whatever the first run still owed is published (by its
        process, or taken over: :mod:`companion_ws.hub.owed`).

        With ``lifecycle`` (a tool run, docs/protocol.md section 13) the run is framed by
        ``tool_call_started``, published before the effect is computed (so before the
        commit: its seq is below the state change's whatever happens next), and
        ``tool_call_finished``, published after the state change and its update.
        Every ``started`` is followed by a ``finished`` of the same id from the same
        process: a run that fails (a tool error, a lost commit) finishes ``is_error``;
        a run that lost the race to another process finishes with the winner's result.
        """
        async with self._locks(session_id):
            recorded, row = await self._store.effects.read(session_id, key)  # one round trip
            if recorded is None:
                return await self._first(
                    session_id, key, name, compute, row, sender, request_id, lifecycle
                )
            replay = _replay(key, session_id, recorded)
        # A repeat: whatever the first run's commit still owes the screens is published
        # before the stored result is answered (docs/protocol.md section 4).
        await self._owed.redeem(f"tool:{key}")
        return replay

    async def _first(
        self,
        session_id: str,
        key: str,
        name: str,
        compute: Compute,
        row: StateRow | None,
        sender: str | None,
        request_id: str | None,
        lifecycle: bool,
    ) -> ToolResult:
        """The first run of ``key`` (under the session's lock)."""
        doc = self._state.doc(session_id, row)
        run = _Run(self._publisher, session_id, key, name, request_id) if lifecycle else None
        if run is not None:
            await run.start()
        new_doc: StateDoc | None = None
        outcome: ToolOutcome | None = None
        effects: list[Sealed] = []
        try:
            outcome = await compute(doc)
            if outcome.patch:
                new_doc = self._state.reduce(doc, outcome.patch, None)
            # Sealed before the commit: an effect whose broadcast would be over the
            # event limit is the tool's error, not a commit left unannounced.
            effects = [
                self._publisher.seal(frame)
                for frame in self._effects(session_id, outcome, new_doc, sender, request_id)
            ]
            result, is_error = _json(outcome.result), False
        except ToolError as exc:
            outcome, result, is_error = None, _json({"error": str(exc)}), True
        except CompanionError as exc:
            outcome, new_doc, effects = None, None, []
            result, is_error = _json({"error": exc.message}), True
        except Exception:
            # A bug, not an answer: logged with its traceback, never stored or sent.
            log.exception("%s failed", name)
            outcome, result, is_error = None, _json({"error": f"{name} failed"}), True
        if run is not None:
            effects.append(self._publisher.seal(run.finished(is_error=is_error)))
        # What the commit owes the screens commits with it: after a crash past this
        # point a retry or any process's sweep publishes it (hub/owed.py).
        after_seq = row.last_seq if row is not None else 0
        if run is not None:
            after_seq = max(after_seq, *(e.seq for e in run.events))
        ledger = LedgerRow(key, session_id, name, result, is_error, now_ms())
        try:
            verdict = await self._store.effects.commit(
                session_id,
                state=self._state.write(doc, new_doc) if new_doc is not None else None,
                ledger=ledger,
                owed=self._owed.rows(f"tool:{key}", effects, after_seq),
            )
        except Exception:
            if run is not None:
                await run.abort(is_error=True)
            raise
        if verdict is not Verdict.COMMITTED:
            # The same id committed elsewhere (another process) first: its result
            # stands. (Its state change can also make ours fail the version check.)
            stored = await self._lost(key, session_id, run)
            if stored is None:
                raise Internal("the state changed during the tool call; retry")
            return stored
        failpoints.hit("after_ledger")
        events = await self._owed.deliver(f"tool:{key}", effects)
        return ToolResult(key, result, is_error, events=(*run.events, *events) if run else events)

    @staticmethod
    def _effects(
        session_id: str,
        outcome: ToolOutcome | None,
        new_doc: StateDoc | None,
        sender: str | None,
        request_id: str | None,
    ) -> list[f.BroadcastFrame]:
        """The broadcasts of a committed effect: its state change, then its update."""
        if outcome is None:
            return []
        frames: list[f.BroadcastFrame] = []
        if new_doc is not None:
            frames.append(changed(session_id, outcome.patch, new_doc.version, request_id, sender))
        if outcome.update_text:
            frames.append(
                f.ContextualUpdate(
                    session_id=session_id,
                    requestId=f.opt(request_id),
                    text=outcome.update_text,
                    data=outcome.update_data,
                    sender=sender,
                )
            )
        return frames

    async def _lost(self, key: str, session_id: str, run: _Run | None) -> ToolResult | None:
        """Our commit failed: the result another process committed for ``key``, if any.
        Our run is finished either way, with that result's ``is_error``."""
        is_error = True
        try:
            stored = await self._stored(key, session_id)
            is_error = stored is None or stored.is_error
            return stored
        finally:
            if run is not None:
                await run.abort(is_error=is_error)

    async def _stored(self, key: str, session_id: str) -> ToolResult | None:
        recorded = await self._store.effects.recorded(key)
        return _replay(key, session_id, recorded) if recorded is not None else None


def _replay(key: str, session_id: str, recorded: Recorded) -> ToolResult:
    """The stored answer of ``key``, which must be this session's."""
    if recorded.session_id != session_id:
        raise SessionMismatch("this tool_call_id belongs to another session")
    return ToolResult(key, recorded.result, recorded.is_error, replayed=True)


def _json(value: Any) -> str:
    return value if isinstance(value, str) else encode(value).decode()


class _Run:
    """One tool run's ``tool_call_started`` / ``tool_call_finished`` pair."""

    def __init__(
        self,
        publisher: Publisher,
        session_id: str,
        tool_call_id: str,
        tool_name: str,
        request_id: str | None,
    ) -> None:
        self._publisher = publisher
        self._session_id = session_id
        self._tool_call_id = tool_call_id
        self._tool_name = tool_name
        self._request_id = request_id
        self._began = time.perf_counter()
        self.events: tuple[Event, ...] = ()

    async def start(self) -> None:
        """Broadcast ``tool_call_started``; a broker that fails it fails the call
        before anything has run."""
        started = f.ToolCallStarted(
            session_id=self._session_id,
            requestId=f.opt(self._request_id),
            tool_call_id=self._tool_call_id,
            tool_name=self._tool_name,
        )
        self.events = (await self._publisher.publish(started),)
        self._began = time.perf_counter()

    def finished(self, *, is_error: bool) -> f.ToolCallFinished:
        duration_ms = round((time.perf_counter() - self._began) * 1000)
        return f.ToolCallFinished(
            session_id=self._session_id,
            requestId=f.opt(self._request_id),
            tool_call_id=self._tool_call_id,
            tool_name=self._tool_name,
            is_error=is_error,
            duration_ms=duration_ms,
        )

    async def abort(self, *, is_error: bool) -> None:
        """Finish a run whose effect was not committed here (best effort: the error
        that stopped the run is the one the caller gets)."""
        try:
            await self._publisher.publish(self.finished(is_error=is_error))
        except Exception as exc:
            log.warning("tool_call_finished of %s not published: %s", self._tool_call_id, exc)
