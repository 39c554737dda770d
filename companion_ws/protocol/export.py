"""The wire, exported for other languages: one JSON document that the page's JavaScript
imports and its tests check frames against, so no client keeps a hand-written copy of
which frames are broadcast or which close codes end a connection.

    python -m companion_ws.protocol.export            # rewrite companion_ws/static/protocol.json
    python -m companion_ws.protocol.export --check    # exit 1 when the file is stale

The document holds a JSON Schema of every client and server frame (msgspec's), the
broadcast and direct frame types, and the close-code rule of
:func:`~companion_ws.protocol.closecodes.should_reconnect` as data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import msgspec

from companion_ws.protocol.closecodes import Close, should_reconnect
from companion_ws.protocol.frames import BROADCAST_TYPES, DIRECT_TYPES, ServerFrame
from companion_ws.protocol.messages import ClientMessage

__all__ = ["TARGET", "document", "main", "render"]

TARGET = Path(__file__).resolve().parent.parent / "static" / "protocol.json"

#: Codes whose rule the document spells out, beyond the ranges.
_LISTED = sorted({*Close, 1001, 1005, 1006, 1013})


def document() -> dict[str, Any]:
    (client, server), components = msgspec.json.schema_components(
        (ClientMessage, ServerFrame), ref_template="#/$defs/{name}"
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "companion_ws wire protocol",
        "$defs": {
            **components,
            "ClientFrame": client,
            "ServerFrame": server,
        },
        "broadcast_types": sorted(BROADCAST_TYPES),
        "direct_types": sorted(DIRECT_TYPES),
        "close_codes": {
            "names": {str(int(c)): c.name.lower() for c in Close},
            "reconnect": {str(code): should_reconnect(code) for code in _LISTED},
            "rule": "1000-2999 reconnect except 1000 and 1009; 4000-4099 reconnect; "
            "4400-4499 stop except 4409 and 4429; anything else stop",
        },
    }


def render() -> bytes:
    return msgspec.json.format(msgspec.json.encode(document()), indent=2) + b"\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    args = parser.parse_args(argv)
    fresh = render()
    if args.check:
        if not TARGET.exists() or TARGET.read_bytes() != fresh:
            print(f"{TARGET} is stale: run python -m companion_ws.protocol.export", file=sys.stderr)
            return 1
        return 0
    TARGET.write_bytes(fresh)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
