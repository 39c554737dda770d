"""Frozen settings, read once from the environment (and CLI flags) and passed down.

No other module reads the environment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./companion.db"
DEFAULT_TOOLS = ("companion_ws.tools.shipping",)
DEFAULT_ELEVENLABS_BASE_URL = "https://api.elevenlabs.io"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str = "memory://"
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_algorithm: str = "HS256"
    # An identity provider's JWKS (Auth0, Cognito, Clerk, Keycloak): keys by kid, cached
    # jwt_jwks_lifespan seconds; an unknown kid refetches at most every jwt_jwks_cooldown.
    jwt_jwks_url: str | None = None
    jwt_jwks_lifespan: float = 300.0
    jwt_jwks_cooldown: float = 30.0
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    admin_claim: str = "role"
    admin_value: str = "admin"
    service_value: str = "service"
    allowed_origins: tuple[str, ...] = ()
    session_ttl: float = 3600.0
    sweep_interval: float = 15.0
    history_size: int = 1000
    history_ttl: float = 86400.0
    history_bytes: int = 8 * 1024 * 1024
    send_queue_bytes: int = 1024 * 1024
    max_state_bytes: int = 256 * 1024
    max_frame_bytes: int = 64 * 1024
    outbox_limit: int = 1024
    slow_close_grace: float = 5.0
    rate_limit_per_second: float = 200.0
    rate_limit_burst: int = 400
    # Frames refused by the rate limit may outrun it by this many before the
    # connection is closed 4429 (a second bucket, refilled at the same rate).
    rate_limit_flood: int = 100
    connect_rate: float = 20.0  # WebSocket connects per second per client address
    connect_burst: int = 50
    max_body_bytes: int = 1024 * 1024  # HTTP request bodies; over it: 413
    # docs/protocol.md section 4 (v1.2): the doors before the token, for HTTP and upgrades.
    max_header_bytes: int = 16 * 1024  # a request head larger than this: 431, or closed
    header_timeout: float = 10.0  # a connection without a whole request head by then: closed
    # One size limit for every door (socket, HTTP, gRPC, the bus, a tool): an event whose
    # frame would exceed it is refused (payload_too_large / 413 / RESOURCE_EXHAUSTED).
    max_event_bytes: int = 64 * 1024
    retention: float = 7 * 86400.0  # seconds an ended session is kept in the database; 0: for ever
    max_connections_per_user: int = 64  # open sockets per sub; the next closes 4429
    max_streams_per_user: int = 16  # AG-UI + gRPC Subscribe/StreamTask streams per sub
    session_create_rate: float = 5.0  # new sessions per second per sub
    session_create_burst: int = 20
    join_token_ttl: float = 300.0
    reconnect_token_ttl: float = 86400.0
    device_ttl: float = 86400.0
    refresh_lead: float = 30.0
    agent_capability_ttl: float = 3600.0
    refresh_grace: float = 25.0
    jwt_leeway: float = 10.0
    public_url: str | None = None
    tools: tuple[str, ...] = DEFAULT_TOOLS
    elevenlabs_tool_secret: str | None = None
    elevenlabs_webhook_secret: str | None = None
    # Talking from the page (docs/protocol.md section 14): the agent the page's conversations
    # open, and the API key that signs them. The key is a secret: never in a repr, a
    # log line or an answer to the browser.
    elevenlabs_agent_id: str | None = None
    elevenlabs_api_key: str | None = field(default=None, repr=False)
    elevenlabs_base_url: str = DEFAULT_ELEVENLABS_BASE_URL
    webhook_tolerance: float = 1800.0
    event_flush_interval: float = 0.2
    event_flush_batch: int = 500
    event_commit_linger: float = 0.002  # a commit's wait for more sessions' events
    auto_migrate: bool | None = None  # None: migrate SQLite on start, never PostgreSQL
    presence_ttl: float = 15.0
    failpoints: str | None = None  # tests only: companion_ws.failpoints
    # docs/protocol.md section 4: owed broadcasts are taken over after this lease (and
    # swept this often); every request is answered (or errs) within request_timeout.
    owed_lease: float = 3.0
    request_timeout: float = 10.0
    # Backends (docs/protocol.md section 15): gRPC and the message bus.
    grpc_port: int | None = None  # serve companion.v1.Sessions on this port
    grpc_host: str = "127.0.0.1"
    bus_url: str | None = None  # nats://host:4222 (JetStream) or redis://host:6379/0 (Streams)
    bus_prefix: str = "companion"  # subjects companion.in/.dead/.out.<sid>; keys companion:in...
    bus_stream: str = "COMPANION"  # the JetStream stream made when none covers <prefix>.in
    bus_consumer: str = "companion-hub"  # the durable consumer / consumer group
    bus_ack_wait: float = 30.0  # an unacknowledged message is redelivered after this
    log_format: str = "text"  # or "json": one object per line (serve --log-format)

    def __post_init__(self) -> None:
        # One place turns the URL forms users are handed into the drivers the hub runs.
        object.__setattr__(self, "database_url", database_url(self.database_url))

    @property
    def signing_key(self) -> str | None:
        return self.jwt_secret

    @property
    def verifying_key(self) -> str | None:
        return self.jwt_public_key or self.jwt_secret

    @property
    def talk_configured(self) -> bool:
        """Whether the page may hold the voice conversation (docs/protocol.md section 14)."""
        return bool(self.elevenlabs_agent_id and self.elevenlabs_api_key)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def migrate_on_start(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> Settings:
        """Settings from ``COMPANION_*`` variables; ``overrides`` (CLI flags) win."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"COMPANION_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# The URL forms hosting providers hand out (Heroku, Render, Supabase...) and
# SQLAlchemy's own defaults, mapped to the async drivers the hub runs on.
_SCHEMES = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


def database_url(url: str) -> str:
    """``url`` on the hub's drivers: ``postgres://`` and ``postgresql://`` become
    ``postgresql+asyncpg://`` (libpq's ``sslmode`` its ``ssl``), ``sqlite://`` becomes
    ``sqlite+aiosqlite://``; any other URL is left as it is. [pure]"""
    scheme, sep, rest = url.partition("://")
    driver = _SCHEMES.get(scheme)
    if not sep or driver is None:
        return url
    if driver.startswith("postgresql"):
        rest = rest.replace("?sslmode=", "?ssl=").replace("&sslmode=", "&ssl=")
    return f"{driver}://{rest}"


def _parse(kind: Any, raw: str) -> Any:
    text = str(kind)
    if "tuple" in text:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if "bool" in text:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if text.startswith("int"):
        return int(raw)
    if text.startswith("float"):
        return float(raw)
    return raw
