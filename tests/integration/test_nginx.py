"""docs/nginx.conf, as docs/scaling.md gives it, in front of a real hub (issue 12): Debian's
nginx runs it in the foreground from a temporary prefix, with only its ports changed;
the Python client, a page-like client (the token in the subprotocol) and a wscat-like
one (``?token=``) connect through it, and no token reaches nginx's access or error log
nor the hub's output.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

from companion_ws.client import ClientClosed, CompanionClient
from tests.support.hub import HubFactory, free_port, token

DOCS = Path(__file__).resolve().parents[2] / "docs"
CONF = DOCS / "nginx.conf"


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:  # the test command installs it; never skip
        raise RuntimeError("nginx is not installed; run scripts/test.sh")
    return found


def config_for(hub_port: int, port: int) -> str:
    """docs/nginx.conf with one upstream server, the hub's port, and nginx's own."""
    text = CONF.read_text()
    lines = []
    for line in text.splitlines():
        if "server 127.0.0.1:8002" in line or "server 127.0.0.1:8003" in line:
            continue  # one hub here
        line = line.replace("127.0.0.1:8001", f"127.0.0.1:{hub_port}")
        line = line.replace("listen 8080;", f"listen 127.0.0.1:{port};")
        lines.append(line)
    out = "\n".join(lines) + "\n"
    assert f"127.0.0.1:{hub_port}" in out and f"listen 127.0.0.1:{port};" in out
    return out


@pytest.fixture
def nginx_prefix(tmp_path: Path) -> Path:
    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True)
    (prefix / "temp").mkdir()
    return prefix


class Nginx:
    def __init__(self, prefix: Path, hub_port: int) -> None:
        self.prefix = prefix
        self.port = free_port()
        self.conf = prefix / "companion.conf"
        self.conf.write_text(config_for(hub_port, self.port))
        self.binary = nginx_binary()
        # As root the workers would drop to `nobody`, who cannot enter pytest's private
        # temporary directory; as any other user nginx runs as that user.
        self.globals = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self, *extra: str) -> list[str]:
        return [
            self.binary,
            "-p",
            f"{self.prefix}/",
            "-e",
            "logs/error.log",
            "-c",
            str(self.conf),
            "-g",
            self.globals,
            *extra,
        ]

    def start(self, timeout: float = 10.0) -> Nginx:
        checked = subprocess.run(self.command("-t"), capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
        out = open(self.prefix / "stderr.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(self.command(), stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.prefix / "stderr.log").read_text()
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGQUIT: a graceful stop that writes out every log line."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self, name: str) -> str:
        path = self.prefix / "logs" / name
        return path.read_text() if path.exists() else ""


@pytest.fixture
def nginx_factory(nginx_prefix: Path) -> Iterator[list[Nginx]]:
    started: list[Nginx] = []
    yield started
    for server in started:
        server.stop()


def test_the_documented_config_is_the_tested_one() -> None:
    """docs/scaling.md shows docs/nginx.conf verbatim."""
    assert CONF.read_text().strip() in (DOCS / "scaling.md").read_text()


async def test_no_token_reaches_nginx_or_hub_logs(
    hub_factory: HubFactory, nginx_prefix: Path, nginx_factory: list[Nginx]
) -> None:
    hub = hub_factory()
    hub.access_log = True
    hub.start()
    proxy = Nginx(nginx_prefix, hub.port)
    nginx_factory.append(proxy)
    proxy.start()
    alice = token("nginx-alice")
    expired = token("nginx-alice", ttl=-60)

    # The Python client (the bridge and `companion-ws connect` dial the same way).
    async with CompanionClient(proxy.ws_url, token=alice, client="agent") as client:
        sid = client.session_id
        assert sid is not None
        echoed = await client.contextual_update("through nginx")
        assert echoed["seq"] >= 1
    # The page's way: subprotocols, nothing secret in the URL.
    offered = [Subprotocol("companion.v1"), Subprotocol(f"bearer.{alice}")]
    async with websockets.connect(
        f"{proxy.ws_url}/ws?session_id={sid}&client=ui",
        subprotocols=offered,
        origin=websockets.Origin(proxy.base_url),
    ) as page:
        assert page.subprotocol == "companion.v1"
        welcome = json.loads(await page.recv())
        assert welcome["type"] == "session_joined" and welcome["session_id"] == sid
        reconnect = welcome["reconnect_token"]
    # wscat's way: ?token= in the URL, which nginx must not write out.
    async with websockets.connect(f"{proxy.ws_url}/ws?token={alice}&client=wscat") as wscat:
        assert json.loads(await wscat.recv())["type"] == "session_joined"
    # A refusal through the proxy, and the page itself opened from its link.
    with pytest.raises(ClientClosed):
        await CompanionClient(proxy.ws_url, token=expired).start()
    async with httpx.AsyncClient(base_url=proxy.base_url) as http:
        assert (await http.get("/", params={"token": alice})).status_code == 200
        assert (await http.get("/static/vendor/companion-client/index.js")).status_code == 200
        listed = await http.get(f"/sessions/{sid}", headers={"Authorization": f"Bearer {alice}"})
        assert listed.status_code == 200
    proxy.stop()
    hub.stop()

    access = proxy.log("access.log")
    errors = proxy.log("error.log")
    assert hub.log_path is not None
    hub_log = hub.log_path.read_text()
    # The logs are really on: every socket and request is in nginx's access log.
    assert access.count('"GET /ws HTTP/1.1" 101') == 4, access
    assert '"GET / HTTP/1.1" 200' in access and f'"GET /sessions/{sid} HTTP/1.1" 200' in access
    assert "upstream=127.0.0.1:" in access
    assert "token" not in access and "?" not in access
    assert hub_log.count("via=subprotocol") == 3 and hub_log.count("via=query") == 1
    for secret in (alice, expired, reconnect):
        for where, text in (("access", access), ("error", errors), ("hub", hub_log)):
            assert secret not in text, where
            assert secret.split(".")[-1] not in text, where
