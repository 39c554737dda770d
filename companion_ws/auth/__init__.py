"""Authentication (JWT verification, minting) and authorization policy. Pure."""
