"""RFC 6455 framing of a server's text frame, done once per broadcast. [pure]

A server's frames are not masked (section 5.1), so the bytes of a frame depend on its
payload only: one broadcast's frame is built once and written to every socket that can
take it (what ``websockets.broadcast`` avoids doing per socket too).
"""

from __future__ import annotations

import struct

__all__ = ["text_frame"]

_FIN_TEXT = 0x81  # FIN, opcode 1 (text)


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame carrying ``payload`` (UTF-8)."""
    size = len(payload)
    if size < 126:
        header = bytes((_FIN_TEXT, size))
    elif size < 65536:
        header = struct.pack("!BBH", _FIN_TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, size)
    return header + payload
