"""A local identity provider for tests: RSA keys by kid, published as a JWKS over HTTP on
a port of its own, rotated under a running hub; it counts the fetches it answers."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa


class Provider:
    """Keys by kid; ``publish`` names the ones the JWKS lists now."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.published: list[str] = []
        self.fetches = 0
        self.delay = 0.0  # seconds each answer waits (a slow identity provider)
        self.down = False  # answer 503 (an identity provider that is down)
        self.url = ""

    def add(self, kid: str, *, curve: bool = False) -> None:
        self.keys[kid] = _private_key(kid, curve)

    def publish(self, *kids: str) -> None:
        self.published = list(kids)

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self.published:
            key = self.keys[kid]
            algo = (
                jwt.algorithms.ECAlgorithm
                if isinstance(key, ec.EllipticCurvePrivateKey)
                else jwt.algorithms.RSAAlgorithm
            )
            jwk = json.loads(algo.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": keys}

    def token(
        self, kid: str, sub: str = "alice", *, algorithm: str = "RS256", **claims: Any
    ) -> str:
        payload = {"sub": sub, "exp": int(time.time()) + 300, **claims}
        return jwt.encode(payload, self.keys[kid], algorithm=algorithm, headers={"kid": kid})


@functools.cache
def _private_key(kid: str, curve: bool) -> Any:
    """One key per kid for the whole run: RSA keys take a while to make."""
    if curve:
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@contextmanager
def serve_jwks(provider: Provider) -> Iterator[Provider]:
    """The provider's JWKS at ``provider.url`` (``/.well-known/jwks.json``)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            provider.fetches += 1
            time.sleep(provider.delay)
            if provider.down:
                self.send_error(503)
                return
            body = json.dumps(provider.jwks()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    provider.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
