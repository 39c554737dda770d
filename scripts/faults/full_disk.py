"""Scenario S7 of the turn-3 reliability review, rerun: the SQLite database on a 32 MiB
tmpfs, filled by a filler file for 8 s under a hub publishing 2 x 2 clients' requests
(half of them state writes), then the space freed. Holds when no request went
unanswered, nothing a client saw or had acknowledged is missing from the history, the
hub stayed up (its socket connections open) and answers ``/readyz`` 200 once space is
back. Needs root (it mounts the tmpfs). Run from the repository:

    .venv/bin/python scripts/faults/full_disk.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from scripts.faults.common import client, new_logs, read_history, verdict
from tests.support.hub import HubProcess, token

SIZE = "32m"
FULL_FOR = 8.0  # s


def fill(disk: Path) -> Path:
    """A file that takes every free byte of the tmpfs."""
    filler = disk / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):  # ENOSPC: full
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


async def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="cw-s7-"))
    disk = tmp / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(disk)], check=True)  # noqa: ASYNC221
    hub = None
    try:
        hub = HubProcess(
            database_url=f"sqlite+aiosqlite:///{disk}/hub.db",
            env={"COMPANION_AUTO_MIGRATE": "true"},
            log_path=tmp / "hub.log",
        ).start()
        tok = token("s7user")
        async with httpx.AsyncClient(base_url=hub.base_url, timeout=30) as http:
            created = await http.post("/sessions", headers={"Authorization": f"Bearer {tok}"})
            sid = created.json()["session_id"]
        stop = asyncio.Event()
        logs = new_logs(4)
        ws_url = f"{hub.ws_url}/ws?token={tok}&session_id={sid}"
        tasks = [asyncio.create_task(client(ws_url, stop, log)) for log in logs]
        await asyncio.sleep(3)
        filler = await asyncio.to_thread(fill, disk)
        await asyncio.sleep(FULL_FOR)
        filler.unlink()
        await asyncio.sleep(6)
        stop.set()
        await asyncio.sleep(13)  # the last requests' timeout passes
        for t in tasks:
            t.cancel()
        async with httpx.AsyncClient(base_url=hub.base_url, timeout=30) as http:
            ready = (await http.get("/readyz")).status_code
        alive = hub.proc is not None and hub.proc.poll() is None
        result = verdict(logs, await read_history(hub.base_url, sid, tok))
        result.update(readyz=ready, hub_alive=alive)
        result["held"] = result["held"] and ready == 200 and alive
        print(json.dumps(result))
        return 0 if result["held"] else 1
    finally:
        if hub is not None:
            hub.stop()
        subprocess.run(["umount", "-l", str(disk)], check=False)  # noqa: ASYNC221
        subprocess.run(["rm", "-rf", str(tmp)], check=False)  # noqa: ASYNC221


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
