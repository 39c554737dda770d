"""``companion-ws serve`` with no key configured (the audit's N11): its development
tokens live an hour at most, reach a terminal only, and never the network by default."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt

from tests.support.hub import free_port

COMMAND = str(Path(sys.executable).parent / "companion-ws")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("COMPANION_JWT_") and k != "COMPANION_DATABASE_URL"
    }
    return {**env, "COMPANION_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"}


def _read_until(fd: int, needle: str, proc: subprocess.Popen[bytes], timeout: float) -> str:
    """What the terminal showed, up to a whole line holding ``needle``."""
    seen = ""
    deadline = time.monotonic() + timeout
    while not any(needle in line for line in seen.splitlines(keepends=True)[:-1]) and not (
        seen.endswith("\n") and needle in seen
    ):
        assert time.monotonic() < deadline, seen
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            assert proc.poll() is None, seen
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the terminal closed: the process is gone
            chunk = b""
        assert chunk, seen
        seen += chunk.decode(errors="replace").replace("\r\n", "\n")
    return seen


def _label(text: str, label: str) -> str:
    for line in text.splitlines():
        if line.strip().startswith(label):
            return line.strip()[len(label) :].strip()
    raise AssertionError(f"no {label!r} in {text!r}")


def test_on_a_terminal_the_admin_token_is_printed_and_lives_an_hour_at_most(
    tmp_path: Path,
) -> None:
    port = free_port()
    primary, secondary = pty.openpty()
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [COMMAND, "serve", "--port", str(port), "--log-level", "warning"],
            cwd=tmp_path,
            env=_env(tmp_path),
            stdin=subprocess.DEVNULL,
            stdout=secondary,
            stderr=log,
        )
    os.close(secondary)
    try:
        shown = _read_until(primary, "admin token", proc, timeout=30)
        admin = _label(shown, "admin token")
        claims = jwt.decode(admin, options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] <= 3600, claims
        assert not (tmp_path / "hub.db.dev-tokens").exists()  # a terminal needs no file
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        os.close(primary)


def test_a_longer_dev_token_ttl_is_refused() -> None:
    result = subprocess.run(
        [COMMAND, "serve", "--dev-token-ttl", "43200"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "an hour at most" in result.stderr


def test_a_random_key_on_a_non_loopback_host_is_refused_with_what_to_do(tmp_path: Path) -> None:
    port = free_port()
    try:
        result = subprocess.run(
            [COMMAND, "serve", "--host", "0.0.0.0", "--port", str(port)],
            cwd=tmp_path,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        # The old behaviour served: nothing may be left listening.
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    assert result.returncode == 2, result.stdout
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "COMPANION_JWT_SECRET" in message and "--dev" in message and "0.0.0.0" in message
    assert result.stdout == ""  # no token was made
    assert not (tmp_path / "hub.db").exists()  # nothing started


def test_dev_says_a_random_key_on_the_network_is_meant(tmp_path: Path) -> None:
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [COMMAND, "serve", "--host", "0.0.0.0", "--port", str(port), "--dev"],
            cwd=tmp_path,
            env=_env(tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the hub did not start"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
