"""The exported wire (``static/protocol.json`` and the client package's ``src/protocol.ts``) is what
``companion_ws.protocol`` says: the committed files are fresh."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from companion_ws.protocol import export
from companion_ws.protocol.closecodes import should_reconnect


def test_the_committed_files_are_fresh() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "companion_ws.protocol.export", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_check_names_a_stale_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "protocol.ts"
    stale.write_text("// old\n")
    monkeypatch.setitem(export.TARGETS, stale, export.render_js)
    assert export.main(["--check"]) == 1
    assert "protocol.ts is stale" in capsys.readouterr().err


def test_the_js_module_carries_the_rule() -> None:
    text = export.render_js().decode()
    assert "export function shouldReconnect(code: number | null | undefined): boolean" in text
    assert "const RETRYABLE_44XX: ReadonlySet<number> = new Set<number>([4409, 4429]);" in text
    assert "const TERMINAL_STANDARD: ReadonlySet<number> = new Set<number>([1000, 1009]);" in text
    for code, reconnect in export.document()["close_codes"]["reconnect"].items():
        assert f'"{code}": {"true" if should_reconnect(int(code)) else "false"},' in text
        assert reconnect == should_reconnect(int(code))


def test_the_frames_are_typescript_types() -> None:
    """Every frame as an interface: a server frame ``<Name>Frame`` (a broadcast one with
    its ``seq``), a client one ``<Name>Message``, and the unions of both."""
    text = export.render_frames().decode()
    assert "export interface SessionStateUpdatedFrame {\n" in text
    updated = text.split("export interface SessionStateUpdatedFrame {")[1].split("}")[0]
    assert "  seq: number;" in updated
    assert "  version: number;" in updated
    assert "  sender?: string | null;" in updated
    welcome = text.split("export interface SessionJoinedFrame {")[1].split("}")[0]
    assert "seq: number;" not in welcome.split("\n")[1]  # direct: no seq of its own added
    assert "export interface UpdateSessionStateMessage {" in text
    assert "  expected_version?: number | null;" in text
    assert "  | ClientToolResultFrame\n" in text and "  | PingMessage\n" in text
