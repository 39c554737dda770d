"""The page's copy of ``@companion-ws/client`` (``static/vendor/companion-client/``) is
the package's source as built: ``scripts/vendor_companion_client.sh --check`` compiles
``packages/client`` afresh and fails on any difference, so the page and the package
cannot drift (one implementation: the page imports the package)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "vendor_companion_client.sh"
VENDORED = ROOT / "companion_ws" / "static" / "vendor" / "companion-client"


def test_the_vendored_build_is_the_package_source_built() -> None:
    assert shutil.which("node"), "node is not installed: run scripts/test.sh"
    done = subprocess.run(
        ["bash", str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_page_has_no_private_client_left() -> None:
    static = ROOT / "companion_ws" / "static"
    for gone in ("client.js", "mirror.js", "protocol.js", "merge-patch.js"):
        assert not (static / gone).exists(), gone
    assert (VENDORED / "index.js").exists()
    app = (static / "app.js").read_text()
    assert "from './vendor/companion-client/index.js'" in app
