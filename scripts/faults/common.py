"""What the fault scenarios share: clients that publish and record what each request got,
and the verdict: requests never answered (silence), events a client saw that the history
lacks or holds otherwise (lost), acknowledged events missing from the history.

    logs = new_logs(4)
    tasks = [asyncio.create_task(client(ws_url, stop, log)) for log in logs]
    ...
    print(json.dumps(verdict(logs, await read_history(base_url, sid, tok))))
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import websockets

NOT_EVENTS = {"session_joined", "resumed", "resync_required", "error"}
Log = dict[str, Any]


def new_logs(n: int) -> list[Log]:
    return [{"sent": {}, "answered": {}, "acked": {}, "seen": {}} for _ in range(n)]


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


async def read_history(base_url: str, sid: str, tok: str) -> dict[int, dict[str, Any]]:
    """The session's whole history over HTTP, by seq."""
    history: dict[int, dict[str, Any]] = {}
    after = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
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
                return history
            after = page["next_after_seq"]


def verdict(logs: list[Log], history: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """What the clients got against what the history holds; ``held`` when nothing was
    silent, lost or acknowledged and missing."""
    codes: dict[str, int] = {}
    for log in logs:
        for v in log["answered"].values():
            codes[v] = codes.get(v, 0) + 1
    missing = [
        json.loads(raw)["type"]
        for log in logs
        for seq, raw in log["seen"].items()
        if seq not in history or json.loads(raw) != history[seq]
    ]
    silent = sum(1 for log in logs for rid in log["sent"] if rid not in log["answered"])
    acked_missing = sum(1 for log in logs for seq in log["acked"].values() if seq not in history)
    return {
        "sent": sum(len(log["sent"]) for log in logs),
        "answers": codes,
        "silent": silent,
        "lost": len(missing),
        "lost_kinds": sorted(set(missing)),
        "acked_missing": acked_missing,
        "history": len(history),
        "held": silent == 0 and not missing and acked_missing == 0,
    }
