"""Typed SQLAlchemy models. Times are integer milliseconds since the epoch, as on the wire."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(255), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_activity_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    ended_at: Mapped[int | None] = mapped_column(BigInteger, default=None, index=True)
    end_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    state: Mapped[str] = mapped_column(Text, default="{}")
    state_version: Mapped[int] = mapped_column(BigInteger, default=0)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    epoch: Mapped[str] = mapped_column(String(32))
    epoch_clean: Mapped[bool] = mapped_column(Boolean, default=True)
    #: The ended session whose state this one was restored from (section 13).
    restored_from: Mapped[str | None] = mapped_column(String(64), default=None)


class EventRow(Base):
    """The session's long history: every broadcast frame, as sent, by seq."""

    __tablename__ = "events"

    session_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    epoch: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)


class ToolCallRow(Base):
    """The ledger that makes a tool call's effect happen once per ``tool_call_id``."""

    __tablename__ = "tool_calls"

    tool_call_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    tool_name: Mapped[str] = mapped_column(String(128))
    result: Mapped[str] = mapped_column(Text)
    is_error: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)


class OwedEventRow(Base):
    """A broadcast a committed effect still owes the screens: written in the effect's
    transaction, deleted once published (``companion_ws.store.owed``)."""

    __tablename__ = "owed_events"
    __table_args__ = (Index("ix_owed_events_claimed_at", "claimed_at"),)

    owner: Mapped[str] = mapped_column(String(300), primary_key=True)
    ordinal: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("sessions.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    after_seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    claimed_at: Mapped[int] = mapped_column(BigInteger)


class JoinTokenRow(Base):
    """One-time join tokens: consumed atomically (``used_at`` set once). The code itself
    is never stored, only its SHA-256 (:func:`companion_ws.store.repositories.code_hash`;
    docs/protocol.md section 7, v1.2)."""

    __tablename__ = "join_tokens"
    __table_args__ = (
        Index("ix_join_tokens_session_id", "session_id"),
        Index("ix_join_tokens_expires_at", "expires_at"),
    )

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("sessions.id", ondelete="CASCADE")
    )
    created_by: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    role: Mapped[str] = mapped_column(String(16), default="companion", server_default="companion")


class DeviceRow(Base):
    """A device that joined a session by join code: its role, for how long, and whether
    the owner revoked it (docs/protocol.md section 11)."""

    __tablename__ = "devices"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    joined_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
