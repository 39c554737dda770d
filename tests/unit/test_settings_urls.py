"""The database URL forms users are handed (hosting providers' ``postgres://`` and
``postgresql://``, plain ``sqlite://``) reach the hub's async drivers (issue 25, friction
7: they crashed with ModuleNotFoundError and NoSuchModuleError)."""

from __future__ import annotations

import pytest

from companion_ws.settings import Settings, database_url


@pytest.mark.parametrize(
    ("given", "runs"),
    [
        ("postgres://u:p@db.example:5432/app", "postgresql+asyncpg://u:p@db.example:5432/app"),
        ("postgresql://u@127.0.0.1/app", "postgresql+asyncpg://u@127.0.0.1/app"),
        (
            "postgres://u:p@db/app?sslmode=require",
            "postgresql+asyncpg://u:p@db/app?ssl=require",
        ),
        ("postgresql://db/app?x=1&sslmode=disable", "postgresql+asyncpg://db/app?x=1&ssl=disable"),
        ("sqlite:///./companion.db", "sqlite+aiosqlite:///./companion.db"),
        # Already on a driver, or not a URL the hub knows: left alone.
        ("postgresql+asyncpg://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("sqlite+aiosqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
        ("mysql://u@db/app", "mysql://u@db/app"),
        ("not a url", "not a url"),
    ],
)
def test_each_form_reaches_the_hubs_driver(given: str, runs: str) -> None:
    assert database_url(given) == runs


def test_settings_from_the_environment_and_from_code_both_map_it() -> None:
    env = {"COMPANION_DATABASE_URL": "postgres://u@db/app"}
    assert Settings.from_env(env).database_url == "postgresql+asyncpg://u@db/app"
    assert Settings(database_url="postgresql://u@db/app").database_url.startswith(
        "postgresql+asyncpg://"
    )
    assert Settings().replace(database_url="sqlite:///x.db").database_url == (
        "sqlite+aiosqlite:///x.db"
    )
