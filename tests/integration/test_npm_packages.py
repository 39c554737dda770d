"""``npm pack`` of the JavaScript packages (``packages/client``, ``packages/react``),
installed into an empty folder as an adopter would, and a Node program using them against
a live hub (tests/integration/consumer/consumer.mjs): connect, state, a version conflict,
a tool call, a forced disconnect resumed without a gap, a refresh, and the React hooks
reading the live client (docs/client.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.support.hub import SECRET, HubProcess

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "packages"
CONSUMER = Path(__file__).resolve().parent / "consumer"

# npm is a requirement of the suite (scripts/test.sh installs it), never a reason to skip.
assert shutil.which("npm"), "npm is not installed: run scripts/test.sh"


def _run(args: list[str], cwd: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done  # type: ignore[no-any-return]


def _pack(package: Path, into: Path) -> Path:
    done = _run(["npm", "pack", "--json", "--pack-destination", str(into)], package)
    info = json.loads(done.stdout)[0]
    files = {f["path"] for f in info["files"]}
    assert {"package.json", "README.md", "dist/index.js", "dist/index.d.ts"} <= files, files
    assert not any(f.startswith(("src/", "test/", "node_modules/")) for f in files), files
    return into / str(info["filename"])


def test_the_packed_client_against_a_live_hub(tmp_path: Path) -> None:
    tarballs = [str(_pack(PACKAGES / name, tmp_path)) for name in ("client", "react")]
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "consumer", "private": true, "type": "module"}')
    # React from npm's cache (packages/react's npm ci put it there): a peer dependency.
    peers = ["react@19.0.0", "react-dom@19.0.0"]
    _run(["npm", "install", "--no-audit", "--no-fund", "--prefer-offline", *tarballs, *peers], app)
    shutil.copy(CONSUMER / "consumer.mjs", app / "consumer.mjs")
    manifest = json.loads((app / "node_modules/@companion-ws/client/package.json").read_text())
    assert manifest["version"] == "1.2.0"
    assert not manifest.get("dependencies"), "no runtime dependency beyond the platform"

    # One database is enough: the client is what is tested. A token of an hour gets its
    # refresh_required 2 s after the connect.
    hub = HubProcess(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        env={"COMPANION_REFRESH_LEAD": "3598"},
        log_path=tmp_path / "hub.log",
    ).start()
    try:
        done = _run(
            ["node", "--experimental-websocket", "consumer.mjs"],
            app,
            env={**os.environ, "HUB": hub.ws_url, "SECRET": SECRET},
            timeout=60,
        )
    finally:
        hub.stop()
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["conflict"] == "version_conflict"
    assert seen["tool"].startswith("tc-")
    assert seen["resume"]["reconnects"] == 1
    assert seen["resume"]["after"] >= seen["resume"]["before"] + 4
    assert seen["minted"] >= 4  # a connect each, a reconnect, and the refresh
    assert seen["react"] == "<p>connected true two 2</p>"
