"""WebSocket close codes (docs/protocol.md section 6), and the one rule that decides from a
code whether a client reconnects (:func:`should_reconnect`).

By range, as centrifuge's ``disconnect.go`` does:

- 1000-2999, the standard codes: reconnect after a transport-level loss (1001 going
  away, 1005 no status, 1006 abnormal, 1011 internal error, 1012 restarting, 1013 try
  again later); stop after 1000 (normal) and 1009 (a frame too large: resending it
  cannot help).
- 4000-4099 would be "reconnect", 4400-4499 are ours and mirror HTTP statuses: stop,
  except the two that describe a passing condition of the *server*, 4409 (the send
  queue overflowed: resume) and 4429 (too many: back off, then reconnect).
- No code at all (the socket vanished) is a reconnect.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["RETRYABLE_44XX", "TERMINAL_STANDARD", "Close", "should_reconnect"]


class Close(IntEnum):
    NORMAL = 1000
    MESSAGE_TOO_BIG = 1009
    INTERNAL = 1011
    RESTARTING = 1012
    BAD_REQUEST = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    TOO_SLOW = 4409
    SESSION_ENDED = 4410
    TOO_MANY = 4429


#: The 44xx codes that describe a passing condition of the server, not of the request.
RETRYABLE_44XX = frozenset({Close.TOO_SLOW, Close.TOO_MANY})
#: The standard codes after which reconnecting cannot help.
TERMINAL_STANDARD = frozenset({Close.NORMAL, Close.MESSAGE_TOO_BIG})


def should_reconnect(code: int | None) -> bool:
    """True when a client closed with ``code`` should reconnect (and resume)."""
    if code is None:
        return True
    if 1000 <= code <= 2999:
        return code not in TERMINAL_STANDARD
    if 4000 <= code <= 4099:
        return True
    if 4400 <= code <= 4499:
        return code in RETRYABLE_44XX
    return False
