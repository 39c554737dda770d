"""Durable storage: SQLAlchemy 2.0 async models, repositories (never commit) and the
unit of work (commits). SQLite by default, PostgreSQL in production."""

__all__ = [
    "engine",
    "eventlog",
    "models",
    "repositories",
    "store",
    "uow",
]
