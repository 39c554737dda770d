"""The rules of ``serve``'s development tokens (companion_ws.devtokens)."""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

import pytest

from companion_ws import devtokens


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert devtokens.is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.20", "10.0.0.1", "example.com"])
def test_every_other_host_is_the_network(host: str) -> None:
    assert not devtokens.is_loopback(host)


def test_the_refusal_is_one_line_that_says_what_to_do() -> None:
    message = devtokens.refusal("0.0.0.0")
    assert "\n" not in message
    assert "COMPANION_JWT_SECRET" in message and "--dev" in message and "127.0.0.1" in message


def test_the_file_is_beside_a_sqlite_database_or_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "data" / "companion.db"
    assert devtokens.token_file(f"sqlite+aiosqlite:///{db}") == db.with_name(
        "companion.db.dev-tokens"
    )
    monkeypatch.chdir(tmp_path)
    assert devtokens.token_file("postgresql+asyncpg://u@h/db") == tmp_path / "companion-dev-tokens"


def test_the_file_is_its_owners_only_even_over_an_older_readable_one(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("old")
    path.chmod(0o644)
    old = os.umask(0o022)
    try:
        devtokens.write_private(path, "new")
    finally:
        os.umask(old)
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_terminal_gets_the_links_and_a_log_only_the_path(tmp_path: Path) -> None:
    file = tmp_path / "t"
    key = tmp_path / "k"
    shown = devtokens.announce(
        "http://h", "USER", "ADMIN", ttl=3600, terminal=True, file=file, key=key
    )
    assert any("ADMIN" in line for line in shown) and any("USER" in line for line in shown)
    logged = devtokens.announce(
        "http://h", "USER", "ADMIN", ttl=3600, terminal=False, file=file, key=key
    )
    assert not any("ADMIN" in line or "USER" in line for line in logged)
    assert any(str(file) in line for line in logged)


def test_the_development_key_is_kept_private_and_reused(tmp_path: Path) -> None:
    path = devtokens.key_file(f"sqlite+aiosqlite:///{tmp_path / 'companion.db'}")
    assert path == tmp_path / "companion.db.dev-key"
    old = os.umask(0o022)
    try:
        first = devtokens.development_key(path)
    finally:
        os.umask(old)
    assert len(first) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert devtokens.development_key(path) == first  # a restart signs with the same key
    path.write_text("short\n")  # not a key the hub made: a new one replaces it
    again = devtokens.development_key(path)
    assert again != first and len(again) >= 32
    assert devtokens.key_file("postgresql+asyncpg://db/app").name == "companion-dev-key"


def test_the_banner_names_the_admin_page_on_the_hubs_own_address() -> None:
    lines = devtokens.links("http://127.0.0.1:18000", "USER", "ADMIN")
    assert "  admin page    http://127.0.0.1:18000/admin?token=ADMIN" in lines
    assert "  companion UI  http://127.0.0.1:18000/?token=USER" in lines


def test_connect_help_names_its_default_url() -> None:
    from companion_ws.cli import build_parser

    parser = build_parser()
    actions = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert "(default: ws://127.0.0.1:8000)" in actions.choices["connect"].format_help()
