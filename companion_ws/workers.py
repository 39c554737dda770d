"""``companion-ws serve --workers N``: N hub processes on one port, one per core
(docs/scaling.md). Each worker is a whole ``companion-ws serve`` (the hub's own HTTP
and WebSocket protocol classes and settings) that binds the port with ``SO_REUSEPORT``,
so the kernel spreads new connections over them; they act as one through the shared
broker (Redis or a Redis Cluster) and database, as several hosts do. This process only
supervises: it starts the workers, restarts one that dies, and passes SIGTERM/SIGINT on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

RESTART_PAUSE = 1.0  # seconds before a worker that died is started again
READY_WAIT = 60.0


def refusal(broker_url: str, workers: int) -> str | None:
    """Why ``workers`` processes cannot share ``broker_url`` (None: they can)."""
    if workers < 1:
        return f"--workers must be 1 or more, not {workers}"
    if workers > 1 and broker_url.startswith("memory://"):
        return (
            f"--workers {workers} needs a broker the processes share: the in-process "
            "broker (COMPANION_BROKER_URL=memory://) lives in one process. Set "
            "COMPANION_BROKER_URL=redis://host:6379/0 (or redis+cluster://host:port,...) "
            "and a PostgreSQL COMPANION_DATABASE_URL"
        )
    return None


def listening_socket(host: str, port: int) -> socket.socket:
    """The port, bound with SO_REUSEPORT beside the other workers' sockets."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def worker_argv(argv: Sequence[str]) -> list[str]:
    """``companion-ws`` arguments of a worker: the serve command's, without --workers
    (nor --migrate: the supervisor migrated already), with --reuse-port."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers=") and arg != "--migrate":
            out.append(arg)
    return [*out, "--reuse-port"]


def _die_with_parent() -> None:
    """In a worker (Linux): SIGTERM when the supervisor dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def supervise(argv: Sequence[str], workers: int, host: str, port: int) -> int:
    """Run ``workers`` workers until SIGTERM or SIGINT; then stop them and wait."""
    command = [sys.executable, "-m", "companion_ws", *worker_argv(argv)]
    env = {**os.environ, "COMPANION_AUTO_MIGRATE": "false"}
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    procs: list[subprocess.Popen[bytes]] = []
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    probe = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    for n in range(workers):
        procs.append(subprocess.Popen(command, env=env, preexec_fn=_die_with_parent))
        if n == 0:  # the first one up before the others: a readable start-up failure
            deadline = time.monotonic() + READY_WAIT
            while not _answers(probe, port) and procs[0].poll() is None and not stopping:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if procs[0].poll() is not None:
                return procs[0].returncode or 1
    print(f"companion-ws: {workers} workers on port {port}", file=sys.stderr, flush=True)
    while not stopping:
        time.sleep(0.2)
        for i, proc in enumerate(procs):
            if proc.poll() is not None and not stopping:
                print(
                    f"companion-ws: worker {proc.pid} exited with {proc.returncode}; "
                    "starting another",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(RESTART_PAUSE)
                procs[i] = subprocess.Popen(command, env=env, preexec_fn=_die_with_parent)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0
