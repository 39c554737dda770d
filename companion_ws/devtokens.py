"""The development tokens ``companion-ws serve`` hands out when no key is configured
(it then signs with a random key of its own): who may get them, for how long, and where
they are written.

- They live an hour at most (:data:`MAX_TTL`).
- A terminal shows them. Anything else on stdout (a log file, journald, a container's
  log) gets only the path of a file readable by its owner only, beside the database,
  that holds them: a log never carries a working admin token.
- A random key is for a hub on this machine: on any other address the hub refuses to
  start unless ``--dev`` says that is meant (:func:`is_loopback`).
- The key is kept in a file beside the database, readable by its owner only
  (:func:`development_key`), so a restart (the first thing a developer does after a code
  change) does not turn every open page's token into a dead one.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

#: The longest a development token lives, in seconds.
MAX_TTL = 3600.0
#: The file's name, beside the SQLite database (``companion.db.dev-tokens``), or in the
#: working directory when the database is not a file.
SUFFIX = ".dev-tokens"
NO_FILE_NAME = "companion-dev-tokens"
#: The development key's file, likewise (``companion.db.dev-key``).
KEY_SUFFIX = ".dev-key"
NO_FILE_KEY_NAME = "companion-dev-key"
#: A key shorter than this in the file is not one the hub made: it is made anew.
_KEY_BYTES = 32


def is_loopback(host: str) -> bool:
    """Whether ``--host`` listens on this machine only: a loopback address or
    ``localhost``. Every other address, names included, is the network."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refusal(host: str) -> str:
    """The one line a hub with a random key says when asked to listen on ``host``."""
    return (
        f"refusing to serve on {host} with a random development key (its admin token "
        "would reach the network): set COMPANION_JWT_SECRET (or a public key), listen on "
        "127.0.0.1, or pass --dev to serve development tokens on this address anyway"
    )


def token_file(database_url: str) -> Path:
    """Where the tokens go when stdout is not a terminal."""
    return _beside(database_url, SUFFIX, NO_FILE_NAME)


def key_file(database_url: str) -> Path:
    """Where the development key is kept."""
    return _beside(database_url, KEY_SUFFIX, NO_FILE_KEY_NAME)


def _beside(database_url: str, suffix: str, no_file_name: str) -> Path:
    from companion_ws.store.engine import sqlite_file  # SQLAlchemy: not for every command

    database = sqlite_file(database_url)
    if database is None:
        return Path(no_file_name).resolve()
    return database.with_name(database.name + suffix).resolve()


def development_key(path: Path) -> str:
    """The development key kept at ``path``: the one there, or a new random one written
    there first (owner-only). OSError when the file can neither be read nor written."""
    try:
        kept = path.read_text().strip()
    except FileNotFoundError:
        kept = ""
    if len(kept.encode()) >= _KEY_BYTES:
        return kept
    key = secrets.token_urlsafe(_KEY_BYTES)
    write_private(path, key + "\n")
    return key


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable and writable by its owner only, whatever
    the umask and whatever mode an older file there had."""
    from companion_ws.store.engine import PRIVATE_MODE

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def links(base: str, user: str, admin: str) -> list[str]:
    """The lines that carry the tokens: the companion page, the WebSocket, the admin
    token, the operator's page (docs/admin.md) and a request that uses the token."""
    ws_base = base.replace("http", "ws", 1)
    return [
        f"  companion UI  {base}/?token={user}",
        f"  WebSocket     {ws_base}/ws?token={user}",
        f"  admin token   {admin}",
        f"  admin page    {base}/admin?token={admin}",
        f"  try           curl -H 'Authorization: Bearer {admin}' {base}/sessions",
    ]


def _minutes(ttl: float) -> str:
    return f"{round(ttl / 60)} min"


def announce(
    base: str, user: str, admin: str, *, ttl: float, terminal: bool, file: Path, key: Path
) -> list[str]:
    """What ``serve`` prints: the links themselves on a terminal; otherwise the lines
    that say where they are, once ``file`` holds them (the caller writes it)."""
    head = [
        "companion-ws: no COMPANION_JWT_SECRET set, so this hub signs tokens with a",
        f"development key kept in {key} (readable by you only; tokens survive a restart",
        f"and live {_minutes(ttl)}; delete the file to make every token invalid).",
    ]
    if terminal:
        return [*head, *links(base, user, admin), ""]
    return [
        *head,
        f"  dev tokens    {file}",
        "  (stdout is not a terminal: the tokens are in that file, readable by you only)",
        "",
    ]
