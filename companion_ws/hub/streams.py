"""Streams: this process's open AG-UI streams and gRPC ``Subscribe`` / ``StreamTask``
calls, each holding a :class:`Ticket` for as long as it is open (docs/protocol.md sections
4 and 12, v1.2).

A ticket is a stream's hold on its credential and its session. It is

- counted against its user's cap (``COMPANION_MAX_STREAMS_PER_USER``; admins and
  services are not counted): :meth:`Streams.reserve` refuses the one too many with
  ``too_many_streams``, before anything is sent;
- *cut* when its credential stops being good: at its deadline (through
  :class:`~companion_ws.hub.lifetimes.Lifetimes`, ``token_expired``) and when its
  device is revoked (the ``device_revoked`` event, which the broker brings to every
  process that subscribed to the session: holding a ticket subscribes it; ``forbidden``);
- *closed* when it is cut or its session ends (``session_ended``).

A stream that reads the session's events (AG-UI, ``Subscribe``) ends with the session
by those events and waits only for the cut; one that does not (``StreamTask``) waits
for the close. Both ask :class:`~companion_ws.hub.credentials.Credentials`, never a
copy of its rules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from companion_ws.auth.tokens import Principal
from companion_ws.broker.base import Broker
from companion_ws.hub.credentials import Credentials
from companion_ws.hub.lifetimes import Lifetimes
from companion_ws.hub.quota import PerUser, counted
from companion_ws.protocol.errors import CompanionError, SessionEnded, TokenExpired, TooManyStreams
from companion_ws.values import Event

__all__ = ["Streams", "Ticket"]

log = logging.getLogger("companion_ws.streams")


class Ticket:
    """One open stream's hold on its credential and its session."""

    __slots__ = ("_key", "closed", "cut", "principal", "reason", "session_id")

    def __init__(self, session_id: str, principal: Principal, key: str | None) -> None:
        self.session_id = session_id
        self.principal = principal
        self._key = key  # the user whose place it took; None: not counted
        #: Set when the credential stops being good (``reason``: why).
        self.cut = asyncio.Event()
        #: Set when the cut comes or the session ends.
        self.closed = asyncio.Event()
        self.reason: CompanionError | None = None

    def end(self, reason: CompanionError) -> None:
        """End the stream for ``reason``; the first reason stands."""
        if self.closed.is_set():
            return
        self.reason = reason
        if not isinstance(reason, SessionEnded):
            self.cut.set()
        self.closed.set()

    # As a lifetime holder (companion_ws.hub.lifetimes.Holder).

    @property
    def gone(self) -> bool:
        return self.closed.is_set()

    def warn(self, expires_at: float) -> None:
        """A stream cannot refresh: nothing to ask."""

    def expire(self, error: TokenExpired) -> None:
        self.end(error)


class Streams:
    def __init__(
        self,
        broker: Broker,
        credentials: Credentials,
        lifetimes: Lifetimes,
        *,
        max_per_user: int,
    ) -> None:
        self._broker = broker
        self._credentials = credentials
        self._lifetimes = lifetimes
        self._per_user = PerUser(max_per_user)
        self._open: dict[str, set[Ticket]] = {}  # by session

    def reserve(self, principal: Principal, session_id: str) -> Ticket:
        """A ticket for a stream about to open: a place in its user's cap, taken now
        (check and reservation in one step), or :class:`TooManyStreams`."""
        key = principal.sub if counted(principal) else None
        if key is not None and not self._per_user.take(key):
            raise TooManyStreams(
                f"this user has {self._per_user.limit} streams open already: close one first"
            )
        return Ticket(session_id, principal, key)

    @asynccontextmanager
    async def hold(self, ticket: Ticket) -> AsyncIterator[Ticket]:
        """Hold ``ticket`` while the stream is open, then give its place back. The
        credential is checked again once the session's events reach this process, so
        a revocation is either seen here or already in the database."""
        sid = ticket.session_id
        self._open.setdefault(sid, set()).add(ticket)
        try:
            await self._broker.subscribe(sid)
        except BaseException:
            self._forget(ticket)
            raise
        try:
            try:
                await self._credentials.check(ticket.principal)
            except CompanionError as exc:
                ticket.end(exc)
            self._lifetimes.watch_stream(ticket)
            yield ticket
        finally:
            self._forget(ticket)
            ticket.end(SessionEnded("the stream is closed"))  # its deadline entry lapses
            self._lifetimes.lapsed()
            try:
                await self._broker.unsubscribe(sid)
            except Exception as exc:
                log.warning("unsubscribing %s failed: %s", sid, exc)

    @asynccontextmanager
    async def open(self, principal: Principal, session_id: str) -> AsyncIterator[Ticket]:
        """:meth:`reserve` and :meth:`hold` in one."""
        async with self.hold(self.reserve(principal, session_id)) as ticket:
            yield ticket

    def release(self, ticket: Ticket) -> None:
        """Give back the place of a ticket that will never be held (its stream did not
        start); :meth:`hold` gives it back by itself."""
        self._forget(ticket)

    def _forget(self, ticket: Ticket) -> None:
        members = self._open.get(ticket.session_id)
        if members is not None:
            members.discard(ticket)
            if not members:
                del self._open[ticket.session_id]
        key, ticket._key = ticket._key, None
        if key is not None:
            self._per_user.give(key)

    def on_event(self, event: Event) -> None:
        """The node's broker handler, for each event: a revocation cuts the streams of
        that device; the end of a session closes its streams."""
        tickets = self._open.get(event.session_id)
        if not tickets:
            return
        if event.kind == "session_ended":
            for ticket in list(tickets):
                ticket.end(SessionEnded("the session has ended"))
            return
        device = self._credentials.revoked(event)
        if device is None:
            return
        for ticket in list(tickets):
            if ticket.principal.device_id == device:
                ticket.end(self._credentials.cut_off())

    def open_count(self, principal: Principal) -> int:
        """How many streams this user holds open here."""
        return self._per_user.held(principal.sub)
