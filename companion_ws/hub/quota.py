"""Per-principal caps (docs/protocol.md section 4, v1.2): how many of something one user
(one ``sub``) holds open in this process. Pure.

The check and the reservation are one synchronous step, so two connects of one user
that interleave at an ``await`` can never both take the last place. Admins and
services are not counted: they are capped per address only.
"""

from __future__ import annotations

from companion_ws.auth.tokens import Principal

__all__ = ["PerUser", "counted"]


def counted(principal: Principal) -> bool:
    """Whether the per-user caps apply to this principal (not to admins or services)."""
    return not (principal.is_admin or principal.is_service)


class PerUser:
    """At most ``limit`` places per key (a ``sub``)."""

    __slots__ = ("_held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[str, int] = {}

    def take(self, key: str) -> bool:
        """Reserve one place for ``key``; False (and nothing reserved) when it is full."""
        held = self._held.get(key, 0)
        if held >= self.limit:
            return False
        self._held[key] = held + 1
        return True

    def give(self, key: str) -> None:
        """Give back a place :meth:`take` reserved."""
        left = self._held.get(key, 0) - 1
        if left > 0:
            self._held[key] = left
        else:
            self._held.pop(key, None)

    def held(self, key: str) -> int:
        return self._held.get(key, 0)

    def __len__(self) -> int:
        """How many keys hold a place."""
        return len(self._held)
