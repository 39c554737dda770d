"""Shared load-generator code for the fan-out and idle benchmarks.

- the servers under test, started as subprocesses pinned to one CPU: the hub
  (``python -m companion_ws serve``) and the bare ``websockets`` baseline;
- process figures read from /proc (RSS, CPU seconds);
- a lean WebSocket client on raw asyncio transports (uvloop): one handshake, then
  a hand-rolled frame parser for the server's unmasked frames. The ``websockets``
  asyncio client costs several times more CPU per received frame, enough to make
  the generator, not the server, the bottleneck at 1,000 sockets;
- tables and JSON results.

Everything runs on 127.0.0.1, and every process started here is stopped here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uvicorn_floor import SERVERS as FLOOR_SERVERS
from websockets.speedups import apply_mask

FLOOR_DEFAULT = FLOOR_SERVERS[0]  # uvicorn with the hub's SocketProtocol, as the hub runs

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
SECRET = "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
SERVER_CPU = 0
CLIENT_CPU = 1


# ---------------------------------------------------------------- process plumbing


def pin(cpu: int) -> None:
    """Pin this process to one CPU (no-op where the CPU does not exist)."""
    if cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


def raise_nofile(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    """VmRSS of a process, in KB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def core_times() -> dict[int, tuple[float, float]]:
    """(busy, total) jiffies per CPU from /proc/stat: busy includes softirq work and
    every other process on that core, which a process's own CPU time does not."""
    out: dict[int, tuple[float, float]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3].isdigit():
            name, *values = line.split()
            v = [float(x) for x in values[:8]]
            idle = v[3] + v[4]
            out[int(name[3:])] = (sum(v) - idle, sum(v))
    return out


def core_busy(before: dict[int, tuple[float, float]], cpu: int) -> float:
    """Percent busy of one CPU since ``before``."""
    after = core_times()
    if cpu not in after or cpu not in before:
        return float("nan")
    busy = after[cpu][0] - before[cpu][0]
    total = after[cpu][1] - before[cpu][1]
    return busy / total * 100 if total else float("nan")


async def wait_quiet(
    cpus: Sequence[int], *, threshold: float = 20.0, window: float = 0.5, timeout: float = 120.0
) -> float:
    """Wait until every CPU in ``cpus`` is under ``threshold`` percent busy over ``window``
    seconds (other people's work on a shared machine skews the figures); returns the
    busiest of them in the last window. Gives up after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        before = core_times()
        await asyncio.sleep(window)
        busy = max(core_busy(before, cpu) for cpu in cpus)
        if busy < threshold or time.monotonic() >= deadline:
            return busy


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                if _healthy(s, port):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer on port {port} within {timeout}s; see {log}")


def _healthy(s: socket.socket, port: int) -> bool:
    s.sendall(
        f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    )
    reply = s.recv(64)
    # The hub answers 200; the baseline (a bare websockets server) refuses plain HTTP
    # with 426, which still says it is listening.
    return reply.startswith(b"HTTP/1.1 ")


@dataclass
class Server:
    """A server under test, in a subprocess pinned to ``SERVER_CPU``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    db_path: Path | None = None
    cwd: Path = REPO
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=lambda: RESULTS / "server.log")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> Server:
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.log = RESULTS / f"{self.name}-{self.port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                preexec_fn=lambda: pin(SERVER_CPU),
            )
        try:
            _wait_port(self.port, self.proc, timeout, self.log)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self._cleanup()
            return
        self.proc.send_signal(signal.SIGKILL)  # no goodbyes to thousands of sockets
        self.proc.wait(15)
        self._cleanup()

    def _cleanup(self) -> None:
        if self.db_path is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


def hub_server(
    *,
    python: str = sys.executable,
    pythonpath: str | None = None,
    env: dict[str, str] | None = None,
) -> Server:
    """``python -m companion_ws serve`` on a fresh SQLite file.

    ``pythonpath`` runs another copy of the code (a scratch checkout) with the same venv.
    """
    port = free_port()
    db = Path(f"/tmp/bench-{uuid.uuid4().hex[:10]}.db")
    full_env = {
        **os.environ,
        "COMPANION_JWT_SECRET": SECRET,
        "COMPANION_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        # Thousands of sockets from one address: the per-address connect limit is for
        # abuse, not for a load generator.
        "COMPANION_CONNECT_RATE": "1000000",
        "COMPANION_CONNECT_BURST": "1000000",
        **(env or {}),
    }
    if pythonpath:
        full_env["PYTHONPATH"] = pythonpath
    argv = [
        python,
        "-m",
        "companion_ws",
        "serve",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    # ``python -m`` puts the working directory first on sys.path: run from the copy.
    cwd = Path(pythonpath) if pythonpath else REPO
    return Server("hub", argv, full_env, port, db_path=db, cwd=cwd)


def cluster_hub(
    name: str, database_url: str, broker_url: str, *, migrate: bool, env: dict[str, str]
) -> Server:
    """``companion-ws serve`` on a shared database and broker (one hub of several),
    migrating the database first when ``migrate``; ``env`` adds to its settings."""
    port = free_port()
    full_env = {
        **os.environ,
        "COMPANION_JWT_SECRET": SECRET,
        "COMPANION_DATABASE_URL": database_url,
        "COMPANION_BROKER_URL": broker_url,
        "COMPANION_AUTO_MIGRATE": "true" if migrate else "false",
        "COMPANION_RATE_LIMIT_PER_SECOND": "1000000",
        "COMPANION_RATE_LIMIT_BURST": "1000000",
        **env,
    }
    argv = [sys.executable, "-m", "companion_ws", "serve", "--port", str(port),
            "--no-access-log", "--log-level", "warning"]  # fmt: skip
    return Server(name, argv, full_env, port, cwd=REPO)


def baseline_server(*, python: str = sys.executable, uvloop: bool = False) -> Server:
    port = free_port()
    argv = [python, str(BENCH_DIR / "baseline_websockets.py"), "--port", str(port)]
    if uvloop:
        argv.append("--uvloop")
    return Server("baseline-uvloop" if uvloop else "baseline", argv, dict(os.environ), port)


def uvicorn_floor_server(*, python: str = sys.executable, server: str = FLOOR_DEFAULT) -> Server:
    """bench/uvicorn_floor.py: uvicorn as the hub runs it, an app that only accepts;
    ``server`` puts another of ``FLOOR_SERVERS`` under the same app (named
    ``floor-SERVER``; the default keeps its name, ``uvicorn-floor``)."""
    if server not in FLOOR_SERVERS:
        raise ValueError(f"unknown floor server {server!r}: one of {FLOOR_SERVERS}")
    port = free_port()
    argv = [python, str(BENCH_DIR / "uvicorn_floor.py"), "--port", str(port)]
    if server == FLOOR_DEFAULT:
        return Server("uvicorn-floor", argv, dict(os.environ), port)
    return Server(f"floor-{server}", [*argv, "--server", server], dict(os.environ), port)


def hub_tokens() -> Any:
    from companion_ws.auth.tokens import TokenConfig, TokenService

    return TokenService(TokenConfig(algorithm="HS256", verifying_key=SECRET, signing_key=SECRET))


# ---------------------------------------------------------------- a lean WebSocket client


class HandshakeError(Exception):
    pass


OnText = Callable[[bytes, int], None]


class WSClient(asyncio.Protocol):
    """One client socket. Server frames are parsed by hand (they are never masked);
    ``on_text(payload, now_ns)`` sees every text message. Frames we send are masked, as
    RFC 6455 requires of a client."""

    __slots__ = (
        "_buf",
        "_frag",
        "_handshake",
        "close_code",
        "closed",
        "on_text",
        "transport",
    )

    def __init__(self, on_text: OnText) -> None:
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        self._buf = b""
        self._frag: list[bytes] | None = None
        loop = asyncio.get_running_loop()
        self._handshake: asyncio.Future[None] | None = loop.create_future()
        self.closed: asyncio.Future[int] = loop.create_future()
        self.close_code: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(HandshakeError(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(self.close_code if self.close_code is not None else 1006)

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        buf = self._buf + data if self._buf else data
        if self._handshake is not None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._buf = buf
                return
            status = buf[: buf.find(b"\r\n")]
            future, self._handshake = self._handshake, None
            if b" 101 " not in status:
                future.set_exception(HandshakeError(status.decode("latin-1")))
                self.transport.close()  # type: ignore[union-attr]
                return
            future.set_result(None)
            buf = buf[end + 4 :]
        pos, size = 0, len(buf)
        on_text = self.on_text
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = struct.unpack_from("!H", buf, pos + 2)[0]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            end = pos + head + length
            if end > size:
                break
            payload = buf[pos + head : end]
            pos = end
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if opcode == 1 and fin:
                on_text(payload, now)
            elif opcode in (1, 2) or (opcode == 0 and self._frag is not None):
                self._frag = [*(self._frag or []), payload] if opcode == 0 else [payload]
                if fin:
                    whole, self._frag = b"".join(self._frag), None
                    on_text(whole, now)
            elif opcode == 8:
                self.close_code = (
                    struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1005
                )
                self._write_frame(0x8, payload[:2])
                self.transport.close()  # type: ignore[union-attr]
            elif opcode == 9:
                self._write_frame(0xA, payload)
        self._buf = buf[pos:] if pos < size else b""

    def _write_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        length = len(payload)
        if length < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        mask = os.urandom(4)
        self.transport.write(head + mask + apply_mask(payload, mask))

    def send_text(self, text: bytes) -> None:
        self._write_frame(0x1, text)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()


async def ws_connect(url: str, on_text: OnText, *, timeout: float = 30.0) -> WSClient:
    """Open a WebSocket to ``ws://127.0.0.1:PORT/path?query``."""
    assert url.startswith("ws://")
    hostport, _, path = url[5:].partition("/")
    host, _, port = hostport.partition(":")
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: WSClient(on_text), host, int(port or 80))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert client.transport is not None
    client.transport.write(request.encode())
    assert client._handshake is not None
    try:
        await asyncio.wait_for(asyncio.shield(client._handshake), timeout)
    except BaseException:
        client.close()
        raise
    return client


class LibClient:
    """The same interface on the ``websockets`` library's asyncio client, to check the
    lean client against it (``--client websockets``): one reader task per socket."""

    def __init__(self, ws: Any, on_text: OnText) -> None:
        self.ws = ws
        self.on_text = on_text
        self.closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.ensure_future(self._read())
        self._sends: set[asyncio.Task[None]] = set()

    async def _read(self) -> None:
        ws = self.ws
        try:
            while True:
                data = await ws.recv(decode=False)
                self.on_text(data, time.time_ns())
        except Exception:
            pass
        if not self.closed.done():
            self.closed.set_result(ws.close_code or 1006)

    def send_text(self, text: bytes) -> None:
        task = asyncio.ensure_future(self.ws.send(text.decode()))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    def close(self) -> None:
        self._reader.cancel()
        self.ws.transport.abort()


async def lib_connect(url: str, on_text: OnText, *, timeout: float = 30.0) -> LibClient:
    from websockets.asyncio.client import connect

    ws = await connect(
        url, open_timeout=timeout, compression=None, max_size=2**20, ping_interval=None
    )
    return LibClient(ws, on_text)


async def create_session(
    connect: Callable[[str, OnText], Any], url: str, on_text: OnText
) -> tuple[Any, str]:
    """Open the socket that creates a hub session (``url`` has its token and no
    session id): its welcome gives the session id, every later frame goes to
    ``on_text``. Returns the client and the session id."""
    welcome: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def first(payload: bytes, now: int) -> None:
        if not welcome.done():
            welcome.set_result(payload)
        else:
            on_text(payload, now)

    client = await connect(url, first)
    session_id = json.loads(await asyncio.wait_for(welcome, 30))["session_id"]
    return client, str(session_id)


async def gather_limited(coros: Sequence[Any], limit: int) -> list[Any]:
    """Run coroutines at most ``limit`` at a time, in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with semaphore:
            return await coro

    return list(await asyncio.gather(*(one(c) for c in coros)))


async def admit(url: str, on_text: OnText, *, welcome: bool, timeout: float = 30.0) -> WSClient:
    """Open a socket and, when ``welcome`` (the hub), wait for the first frame it gets:
    the hub accepts the WebSocket handshake before it checks the token, so a client is
    *admitted* (token verified, join rules applied, presence registered) only when its
    ``session_joined`` arrives. That frame goes to ``on_text`` too. Raises
    :class:`HandshakeError` when the first frame is not ``session_joined``."""
    if not welcome:
        return await ws_connect(url, on_text, timeout=timeout)
    first: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def on_first(payload: bytes, now: int) -> None:
        if not first.done():
            first.set_result(payload)
        on_text(payload, now)

    client = await ws_connect(url, on_first, timeout=timeout)
    try:
        payload = await asyncio.wait_for(first, timeout)
    except BaseException:
        client.close()
        raise
    if b'"session_joined"' not in payload:
        client.close()
        raise HandshakeError(f"refused: {payload[:200]!r}")
    client.on_text = on_text
    return client


def start_py_spy(pid: int, out: Path, duration: float, rate: int = 250) -> subprocess.Popen[bytes]:
    """py-spy sampling process ``pid`` for ``duration`` seconds into ``out`` (.svg: a
    flame graph, .json: speedscope, else raw collapsed stacks). Needs py-spy in the venv.
    ``PY_SPY_NATIVE=1`` in the environment adds C frames (``--native``)."""
    import shutil

    fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(out.suffix, "raw")
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("profiling needs py-spy: .venv/bin/pip install py-spy")
    seconds = str(max(1, int(duration)))
    argv = [py_spy, "record", "--pid", str(pid), "--duration", seconds, "--rate", str(rate),
            "--nonblocking", "--format", fmt, "--output", str(out)]  # fmt: skip
    if os.environ.get("PY_SPY_NATIVE"):
        argv.append("--native")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL)


# ---------------------------------------------------------------- figures


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    lines = [
        "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def header_lines(headers: Sequence[str], width: int = 8) -> str:
    """The head of a table printed one row at a time (fixed column widths)."""
    widths = [max(len(h), width) for h in headers]
    return "\n".join(
        [
            "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)),
            "  ".join("-" * w for w in widths),
        ]
    )


def row_line(headers: Sequence[str], row: Sequence[Any], width: int = 8) -> str:
    widths = [max(len(h), width) for h in headers]
    return "  ".join(_cell(v).rjust(w) for v, w in zip(row, widths, strict=True))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def git_revision() -> str:
    """The repository's commit, ``+dirty`` when the working tree has changes."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev}+dirty" if dirty else rev


def write_results(kind: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{kind}-{stamp}.json"
    payload = {
        "kind": kind,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "loadavg_at_end": load_average(),
        "commit": git_revision(),
        **payload,
    }
    path.write_text(json.dumps(payload, indent=2))
    return path


def use_uvloop() -> None:
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
