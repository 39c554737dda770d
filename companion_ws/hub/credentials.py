"""One place decides whether a credential is still good (docs/protocol.md sections 11 and
12, v1.2), and every door and every long-lived stream asks it.

A credential is good for its session while

- it has not expired. A door sees the token's own ``exp`` (the token service refuses
  an expired token); an open socket or stream keeps it until :meth:`Credentials.deadline`
  (``exp`` plus the refresh grace), which only a socket's ``refresh`` moves;
- for a device's token: its device is known, belongs to that session, and is neither
  revoked nor past its lifetime (:meth:`Credentials.check`, one database read);
- and no ``device_revoked`` event has named its device since (:meth:`Credentials.revoked`):
  the revocation is a broadcast event of the session, so every process that holds a
  socket or a stream of the session receives it through the broker.

Who asks: the session directory (every HTTP read and write, the socket's join) and
gRPC through it; :class:`~companion_ws.hub.lifetimes.Lifetimes` for the deadlines of
sockets and streams; the node (sockets) and :class:`~companion_ws.hub.streams.Streams`
(AG-UI and gRPC streams) for revocations.
"""

from __future__ import annotations

from companion_ws.auth.tokens import Principal
from companion_ws.protocol.codec import decode_json, now_ms
from companion_ws.protocol.errors import Forbidden, Unauthorized
from companion_ws.store.store import Store
from companion_ws.values import Event

__all__ = ["REVOKED", "Credentials"]

#: The broadcast event that revokes a device on every process.
REVOKED = "device_revoked"


class Credentials:
    def __init__(self, store: Store, *, grace: float) -> None:
        self._store = store
        self._grace = grace

    async def check(self, principal: Principal) -> None:
        """:class:`Unauthorized` unless the credential is still good now. Only a
        device's token needs more than its signature and ``exp``: its device row."""
        if not principal.is_device:
            return
        assert principal.device_id is not None
        async with self._store.uow() as uow:
            device = await uow.devices.get(principal.device_id)
        if device is None or device.session_id != principal.session_scope:
            raise Unauthorized("this device is unknown")
        if device.revoked_at is not None:
            raise Unauthorized("this device was removed from the session")
        if device.expires_at <= now_ms():
            raise Unauthorized("this device's access has expired: join again")

    def deadline(self, principal: Principal) -> float:
        """When an open socket or stream on this credential ends (epoch seconds): its
        expiry plus the grace; 0 for a credential that never expires."""
        if principal.expires_at <= 0:
            return 0.0
        return principal.expires_at + self._grace

    @staticmethod
    def revoked(event: Event) -> str | None:
        """The device a broadcast event revokes, if it is a revocation."""
        if event.kind != REVOKED:
            return None
        device = decode_json(event.payload).get("device_id")
        return device if isinstance(device, str) else None

    @staticmethod
    def cut_off() -> Forbidden:
        """What an open socket or stream of a revoked device is told as it ends."""
        return Forbidden("this device was removed from the session")
