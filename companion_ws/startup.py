"""What ``companion-ws serve`` checks before it listens, each failure said in one line
that names the fix: the port is free, the database exists and is migrated (or is
migrated now, on SQLite or with ``--migrate``), and a configuration that would
silently split sessions across processes is warned about."""

from __future__ import annotations

import errno
import logging
import socket

from companion_ws.settings import Settings
from companion_ws.store.store import Store

__all__ = ["StartupError", "check_port", "check_schema", "warn_about"]

log = logging.getLogger("companion_ws.startup")


class StartupError(RuntimeError):
    """The hub cannot start; the message says what to do."""


def check_port(host: str, port: int) -> None:
    """Refuse a busy port before anything else starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"port {port} on {host} is already in use (another hub?): stop it, or "
                    f"start this one on another port with --port {port + 1}"
                ) from None
            raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


async def check_schema(settings: Settings, safe_url: str) -> None:
    """Migrate when the settings say so; otherwise refuse a database that is missing or
    behind the code."""
    store = Store(settings.database_url)
    try:
        if settings.migrate_on_start:
            await store.migrate()
            return
        try:
            revision, head = await store.schema()
        except Exception as exc:
            raise StartupError(
                f"cannot use the database {safe_url}: {_reason(exc)}: create it, or fix "
                "COMPANION_DATABASE_URL"
            ) from None
        if revision != head:
            state = "not migrated" if revision is None else f"at migration {revision}"
            raise StartupError(
                f"the database {safe_url} is {state} (this code needs {head}): run "
                "`companion-ws migrate` first, or start with `companion-ws serve --migrate`"
            )
    finally:
        await store.close()


def warn_about(settings: Settings) -> list[str]:
    """Configurations that start but surprise: each as a warning line."""
    warnings = []
    if not settings.is_sqlite and settings.broker_url.startswith("memory://"):
        warnings.append(
            "PostgreSQL with the in-process broker (COMPANION_BROKER_URL=memory://): several "
            "hub processes on this database will NOT share sessions; set "
            "COMPANION_BROKER_URL=redis://… to run more than one"
        )
    return warnings


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
