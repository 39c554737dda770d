"""WebSocket close codes (PROTOCOL.md section 6).

By range, as centrifuge's ``disconnect.go`` does: 1000-1999 are the standard codes,
4400-4499 are ours and mirror HTTP statuses. :data:`RETRYABLE` lists the codes after
which a client should reconnect and resume.
"""

from enum import IntEnum


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


RETRYABLE: frozenset[int] = frozenset({1006, 1011, 1012, 4409, 4429})
TERMINAL: frozenset[int] = frozenset({1000, 4400, 4401, 4403, 4410})
