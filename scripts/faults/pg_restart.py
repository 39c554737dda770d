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
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from scripts.faults.common import client, new_logs, read_history, verdict
from tests.support.hub import HubProcess, token

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PORT = 25433
# Redis (as in the review) unless told otherwise: python pg_restart.py memory://
BROKER = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"


def pg(*args: str, data: Path) -> None:
    cmd = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", *args]
    subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True)


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
        logs = new_logs(4)
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
        result = verdict(logs, await read_history(hub.base_url, sid, tok))
        print(json.dumps(result))
        return 0 if result["held"] else 1
    finally:
        if hub is not None:
            hub.stop()
        pg("-m", "immediate", "stop", data=data) if (data / "postmaster.pid").exists() else None
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
