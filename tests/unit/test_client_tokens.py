"""Which tokens the Python client treats as one-time (a join token) or as able to renew
themselves (a joined device's), read without verifying them (the hub verifies)."""

from __future__ import annotations

from companion_ws.auth.tokens import TokenConfig, TokenService
from companion_ws.client.address import is_device_token, is_join_token

SECRET = "a-test-secret-of-at-least-32-bytes-0123456789"
tokens = TokenService(TokenConfig(algorithm="HS256", verifying_key=SECRET, signing_key=SECRET))


def test_a_join_code_and_a_join_jwt_are_join_tokens() -> None:
    assert is_join_token("Ab3dEf6hIj9kLm2nOp5qRs")
    assert is_join_token(tokens.mint("alice", token_type="join"))
    assert not is_join_token(tokens.mint("alice"))


def test_only_a_device_token_renews_itself() -> None:
    assert is_device_token(tokens.mint("alice", token_type="device"))
    assert not is_device_token(tokens.mint("alice", token_type="reconnect"))
    assert not is_device_token(tokens.mint("alice"))
    assert not is_device_token("not-a-jwt")
    assert not is_device_token("a.b.c")
