"""Scenario S3 of the turn-3 reliability review, rerun: PostgreSQL stopped (``-m
immediate``) and started again, twice (at once, then after a few seconds down), under a
hub publishing 2 x 2 clients' requests; counts requests that got neither an answer nor
an ``error`` (silence), acknowledged events missing from the history, and seqs reused.

Half the requests are state writes, as in the review; the broker is the local Redis
(``redis://127.0.0.1:6379/0``, its sessions are the script's own) or the first argument.
A private PostgreSQL (``initdb`` as the ``postgres`` user, port 25433) is started and
stopped by this script; nothing shared is touched. Run from the repository:

    .venv/bin/python scripts/faults/pg_restart.py
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.hub import HubProcess, token

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PORT = 25433
# Redis (as in the review) unless told otherwise: python pg_restart.py memory://
BROKER = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"
NOT_EVENTS = {"session_joined", "resumed", "resync_required", "error"}


def pg(*args: str, data: Path) -> None:
    cmd = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", *args]
    subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True)


async def client(url: str, stop: asyncio.Event, log: dict[str, Any]) -> None:
    """Publishes ~25/s, records what each request got; reconnects (resuming) when closed."""
    last = 0
    while not stop.is_set():
        try:
            async with websockets.connect(f"{url}&last_seq={last}" if last else url) as ws:

                async def read() -> None:
                    nonlocal last
                    async for raw in ws:
                        frame = json.loads(raw)
                        if "seq" in frame and frame["type"] not in NOT_EVENTS:
                            last = max(last, frame["seq"])
                            log["seen"][frame["seq"]] = raw
                        rid = frame.get("requestId")
                        if rid in log["sent"]:
                            log["answered"][rid] = (
                                frame["type"] if frame["type"] != "error" else frame["code"]
                            )
                            if "seq" in frame:
                                log["acked"][rid] = frame["seq"]

                reader = asyncio.create_task(read())
                while not stop.is_set() and not reader.done():
                    rid = uuid.uuid4().hex[:10]
                    log["sent"][rid] = time.monotonic()
                    n = len(log["sent"])
                    frame = (
                        {"type": "contextual_update", "text": rid}
                        if n % 2
                        else {"type": "update_session_state", "patch": {"n": n}}
                    )
                    await ws.send(json.dumps({**frame, "requestId": rid}))
                    await asyncio.sleep(0.04)
                await asyncio.sleep(12)  # every request's timeout passes: answered or error
                reader.cancel()
        except Exception:
            await asyncio.sleep(0.5)


async def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="cw-s3-"))
    data = tmp / "pg"
    data.mkdir()
    shutil.chown(tmp, "postgres")
    shutil.chown(data, "postgres")
    subprocess.run(  # noqa: ASYNC221 (before any client runs)
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(PG_BIN / "initdb"),
            "-A",
            "trust",
            "-U",
            "postgres",
            str(data),
        ],
        check=True,
        capture_output=True,
    )
    pg("-o", f"-p {PORT} -k {tmp}", "-l", str(tmp / "pg.log"), "start", data=data)
    hub = None
    try:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{PORT}/postgres"
        hub = HubProcess(
            database_url=url,
            env={"COMPANION_AUTO_MIGRATE": "true", "COMPANION_BROKER_URL": BROKER},
            log_path=tmp / "hub.log",
        ).start()
        tok = token("s3user")
        async with httpx.AsyncClient(base_url=hub.base_url, timeout=30) as http:
            sid = (await http.post("/sessions", headers={"Authorization": f"Bearer {tok}"})).json()[
                "session_id"
            ]
        stop = asyncio.Event()
        logs = [{"sent": {}, "answered": {}, "acked": {}, "seen": {}} for _ in range(4)]
        ws_url = f"{hub.ws_url}/ws?token={tok}&session_id={sid}"
        tasks = [asyncio.create_task(client(ws_url, stop, log)) for log in logs]
        await asyncio.sleep(3)
        pg("-m", "immediate", "stop", data=data)  # A: stop and start at once
        pg("-o", f"-p {PORT} -k {tmp}", "-l", str(tmp / "pg.log"), "start", data=data)
        await asyncio.sleep(4)
        pg("-m", "immediate", "stop", data=data)  # B: down for 6 s
        await asyncio.sleep(6)
        pg("-o", f"-p {PORT} -k {tmp}", "-l", str(tmp / "pg.log"), "start", data=data)
        await asyncio.sleep(4)
        stop.set()
        await asyncio.sleep(13)  # the last requests' timeout passes
        for t in tasks:
            t.cancel()
        async with httpx.AsyncClient(base_url=hub.base_url, timeout=30) as http:
            history: dict[int, dict[str, Any]] = {}
            after = 0
            while True:
                page = (
                    await http.get(
                        f"/sessions/{sid}/history",
                        params={"after_seq": after, "limit": 500},
                        headers={"Authorization": f"Bearer {tok}"},
                    )
                ).json()
                for e in page["events"]:
                    history[e["seq"]] = e
                if not page["has_more"]:
                    break
                after = page["next_after_seq"]
        sent = sum(len(log["sent"]) for log in logs)
        silent = sum(1 for log in logs for rid in log["sent"] if rid not in log["answered"])
        codes: dict[str, int] = {}
        for log in logs:
            for v in log["answered"].values():
                codes[v] = codes.get(v, 0) + 1
        lost = sum(
            1
            for log in logs
            for seq, raw in log["seen"].items()
            if seq not in history or json.loads(raw) != history[seq]
        )
        lost_kinds = sorted(
            {
                json.loads(raw)["type"]
                for log in logs
                for seq, raw in log["seen"].items()
                if seq not in history or json.loads(raw) != history[seq]
            }
        )
        acked_missing = sum(
            1 for log in logs for rid, seq in log["acked"].items() if seq not in history
        )
        print(
            json.dumps(
                {
                    "sent": sent,
                    "answers": codes,
                    "silent": silent,
                    "lost": lost,
                    "lost_kinds": lost_kinds,
                    "acked_missing": acked_missing,
                    "history": len(history),
                }
            )
        )
        return 0 if silent == 0 and lost == 0 and acked_missing == 0 else 1
    finally:
        if hub is not None:
            hub.stop()
        pg("-m", "immediate", "stop", data=data) if (data / "postmaster.pid").exists() else None
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
