"""Authentication (JWT verification, minting) and authorization policy. Pure."""

__all__ = [
    "policy",
    "tokens",
]
