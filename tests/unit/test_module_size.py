"""No module of the hub grows past 400 lines (a module that does is doing more than one
thing): the WebSocket protocol class, which keeps uvicorn's whole contract in one place,
and the generated gRPC code are the exceptions."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 400
EXCEPTIONS = {
    "companion_ws/endpoints/socket_protocol.py",
}
GENERATED = "companion_ws/grpc/v1/"


def test_no_module_over_the_limit() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for package in ("companion_ws", "ui_state")
        for path in (ROOT / package).rglob("*.py")
    }
    assert len(sizes) > 50
    over = {
        name: lines
        for name, lines in sizes.items()
        if lines > LIMIT and name not in EXCEPTIONS and not name.startswith(GENERATED)
    }
    assert over == {}
