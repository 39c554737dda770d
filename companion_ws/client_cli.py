"""``companion-ws connect``: an interactive terminal client (the seeds' test_session.sh).

Prints every frame the hub sends as one JSON line on stdout; reads lines from stdin
and sends each as a JSON frame. A bare word sends ``{"type": word}`` (``ping``,
``get_session_state``, ``get_presence``). Reconnects and resumes like any
:class:`~companion_ws.client.CompanionClient`; notes go to stderr. Ends at the end of
stdin, or when the hub closes the session for good (exit status 1 unless 1000).

    COMPANION_TOKEN="$(companion-ws token --sub alice)" companion-ws connect
    {"type": "contextual_update", "text": "hello", "data": {"n": 1}}
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
from typing import Any

from companion_ws.client import ClientClosed, CompanionClient
from companion_ws.secrets_input import read_secret


def register(subparsers: Any) -> None:
    """Add ``connect`` to ``companion-ws``'s subcommands."""
    parser = subparsers.add_parser(
        "connect", help="an interactive client: frames out as JSON lines, lines in as frames"
    )
    parser.add_argument(
        "--url", default="ws://127.0.0.1:8000", help="the hub's base URL (default: %(default)s)"
    )
    parser.add_argument(
        "--token-stdin",
        action="store_true",
        help="read the token from standard input (default: $COMPANION_TOKEN)",
    )
    parser.add_argument("--session-id", help="join this session (default: a new one)")
    parser.add_argument("--client", default="cli", help="the client kind the others see")
    parser.set_defaults(func=cmd_connect)


def cmd_connect(args: argparse.Namespace) -> int:
    token = read_secret("COMPANION_TOKEN", from_stdin=args.token_stdin)
    if not token:
        print(
            "companion-ws: set COMPANION_TOKEN, or pipe it in with --token-stdin", file=sys.stderr
        )
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_connect(args.url, token, args.session_id, args.client))
    return 130


def parse_line(line: str) -> dict[str, Any] | None:
    """A typed line as a frame: JSON, or a bare word as ``{"type": word}``.
    None for a blank line; ValueError for anything else."""
    text = line.strip()
    if not text:
        return None
    if text.replace("_", "").isalnum():
        return {"type": text}
    frame = json.loads(text)
    if not isinstance(frame, dict):
        raise ValueError("a frame is a JSON object")
    return frame


async def _connect(url: str, token: str, session_id: str | None, kind: str) -> int:
    client = CompanionClient(
        url,
        token=token,
        session_id=session_id,
        client=kind,
        open_timeout=3.0,
        first_connect_timeout=3.0,  # a wrong URL or port is said at once, not retried for ever
    )
    frames = client.events()  # made before start(): the welcome is printed too
    printer = asyncio.create_task(_print_frames(frames))
    try:
        await client.start()
    except ClientClosed as exc:
        await printer
        if exc.code in (None, 1006) and client.connection_id is None:
            print(
                f"companion-ws: nothing answers at {url}: is the hub running? Start it with "
                "`companion-ws serve`, or point --url at it",
                file=sys.stderr,
            )
        else:
            print(f"companion-ws: refused: {exc}", file=sys.stderr)
        return 1
    lines = _stdin_lines()
    reader = asyncio.create_task(_send_lines(client, lines))
    done, _ = await asyncio.wait({printer, reader}, return_when=asyncio.FIRST_COMPLETED)
    if reader in done:  # the end of stdin: say goodbye
        await client.close()
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    await printer
    code = client.closed_code
    if code != 1000:
        print(f"companion-ws: closed ({code}): {client.closed_reason}", file=sys.stderr)
        return 1
    return 0


async def _print_frames(frames: Any) -> None:
    async for frame in frames:
        sys.stdout.write(json.dumps(frame, separators=(",", ":")) + "\n")
        sys.stdout.flush()


async def _send_lines(client: CompanionClient, lines: asyncio.Queue[str | None]) -> None:
    while (line := await lines.get()) is not None:
        try:
            frame = parse_line(line)
        except ValueError as exc:
            print(f"companion-ws: not sent, not a JSON object: {exc}", file=sys.stderr)
            continue
        if frame is None:
            continue
        try:
            await client.send(frame)
        except ConnectionError as exc:
            print(f"companion-ws: not sent: {exc}", file=sys.stderr)


def _stdin_lines() -> asyncio.Queue[str | None]:
    """Lines of stdin, read by a daemon thread (works for a terminal, a pipe or a
    file alike, and never keeps the process alive); None at the end."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def put(item: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: we are exiting
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def read() -> None:
        for line in sys.stdin:
            put(line)
        put(None)

    threading.Thread(target=read, name="stdin", daemon=True).start()
    return queue
