"""COMPANION_JWT_JWKS_URL (docs/protocol.md section 11): an identity provider's keys,
fetched off the event loop, cached, refetched once for an unknown kid (rate-limited),
rotated under a running hub, the algorithm still pinned; on the WebSocket, HTTP and gRPC
doors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from companion_ws.auth.keys import KeyConfigError, check_keys
from companion_ws.grpc.v1 import companion_pb2 as pb
from tests.support.backends import stub
from tests.support.hub import free_port
from tests.support.inproc import InProcessHub, inprocess_hub
from tests.support.jwks import Provider, serve_jwks

COOLDOWN = 0.5


@pytest.fixture
def provider() -> Iterator[Provider]:
    idp = Provider()
    for kid in ("k1", "k2", "k3"):
        idp.add(kid)
    idp.add("ec", curve=True)
    idp.publish("k1")
    with serve_jwks(idp) as served:
        yield served


def verifying_with(provider: Provider) -> dict[str, Any]:
    """The hub's settings to verify RS256 tokens (audience ``companion``) against
    ``provider``'s key set, refetched at most once per ``COOLDOWN``."""
    return {
        "jwt_secret": None,
        "jwt_algorithm": "RS256",
        "jwt_audience": "companion",
        "jwt_jwks_url": provider.url,
        "jwt_jwks_cooldown": COOLDOWN,
    }


@pytest.fixture
async def hub(tmp_path: Path, provider: Provider) -> AsyncIterator[tuple[InProcessHub, int]]:
    port = free_port()
    db = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    async with inprocess_hub(db, **verifying_with(provider), grpc_port=port) as running:
        yield running, port


async def _close_code(hub: InProcessHub, token: str) -> int | None:
    ws = await hub.connect(token, expect_welcome=False)
    if ws.close_code is None:
        frame = await ws.recv()
        if frame["type"] != "session_joined":
            return (await ws.closed())[0]
        await ws.close()
        return 1000
    return ws.close_code[0]


async def _grpc_status(port: int, token: str) -> grpc.StatusCode:
    channel, api = stub(port)
    try:
        await api.GetState(
            pb.GetStateRequest(session_id="nope"),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=10,
        )
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    finally:
        await channel.close()
    return grpc.StatusCode.OK


async def test_a_rotated_key_is_fetched_under_the_running_hub_and_the_old_one_retired(
    hub: tuple[InProcessHub, int], provider: Provider
) -> None:
    inproc, port = hub
    assert provider.fetches == 1  # fetched at start
    old = provider.token("k1", aud="companion")
    assert await _close_code(inproc, old) == 1000
    assert (
        await inproc.http.get("/sessions", headers={"authorization": f"Bearer {old}"})
    ).status_code == 200
    assert provider.fetches == 1  # served from the cache

    await asyncio.sleep(COOLDOWN)
    provider.publish("k2")  # the provider rotates: k1 is gone, k2 signs
    new = provider.token("k2", "bob", aud="companion")
    assert await _close_code(inproc, new) == 1000  # no restart
    assert provider.fetches == 2
    assert (
        await inproc.http.get("/sessions", headers={"authorization": f"Bearer {new}"})
    ).status_code == 200
    assert await _grpc_status(port, new) == grpc.StatusCode.NOT_FOUND  # authenticated
    assert await _close_code(inproc, old) == 4401  # retired with the set it left
    assert await _grpc_status(port, old) == grpc.StatusCode.UNAUTHENTICATED
    assert provider.fetches == 2


async def test_a_refresh_with_a_rotated_key_fetches_it(
    hub: tuple[InProcessHub, int], provider: Provider
) -> None:
    inproc, _ = hub
    ws = await inproc.connect(provider.token("k1", aud="companion"))
    await asyncio.sleep(COOLDOWN)
    provider.publish("k1", "k2")
    reply = await ws.request({"type": "refresh", "token": provider.token("k2", aud="companion")})
    assert reply["type"] == "refreshed", reply
    assert provider.fetches == 2
    await ws.close()


async def test_unknown_kids_refetch_at_most_once_per_cooldown(
    hub: tuple[InProcessHub, int], provider: Provider
) -> None:
    inproc, _ = hub
    await asyncio.sleep(COOLDOWN)
    forged = [provider.token("k3", aud="companion") for _ in range(6)]  # k3: never published
    codes = await asyncio.gather(*(_close_code(inproc, t) for t in forged))
    assert codes == [4401] * 6
    assert provider.fetches == 2  # the start, then one refetch for the whole burst
    for _ in range(3):
        assert await _close_code(inproc, forged[0]) == 4401
    assert provider.fetches == 2  # still cooling down
    await asyncio.sleep(COOLDOWN)
    assert await _close_code(inproc, forged[0]) == 4401
    assert provider.fetches == 3


async def test_a_provider_that_is_down_keeps_the_last_set_and_is_asked_once_per_cooldown(
    tmp_path: Path, provider: Provider
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'down.db'}"
    async with inprocess_hub(db, **verifying_with(provider), jwt_jwks_lifespan=0.1) as inproc:
        provider.down = True
        await asyncio.sleep(COOLDOWN)  # the set is past its lifespan, the cooldown passed
        good = provider.token("k1", aud="companion")
        codes = await asyncio.gather(*(_close_code(inproc, good) for _ in range(5)))
        assert codes == [1000] * 5  # the last set fetched still verifies
        assert provider.fetches == 2  # the start, then one try for the whole burst
        provider.down = False
        await asyncio.sleep(COOLDOWN)
        assert await _close_code(inproc, good) == 1000
        assert provider.fetches == 3


async def test_the_fetch_never_blocks_the_event_loop(
    hub: tuple[InProcessHub, int], provider: Provider
) -> None:
    inproc, _ = hub
    await asyncio.sleep(COOLDOWN)
    provider.publish("k1", "k2")
    provider.delay = 1.0  # a slow identity provider
    waiting = asyncio.ensure_future(_close_code(inproc, provider.token("k2", aud="companion")))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    assert await _close_code(inproc, provider.token("k1", aud="companion")) == 1000
    assert time.monotonic() - started < 0.5  # served while the fetch runs in its thread
    assert not waiting.done()
    assert await waiting == 1000


async def test_the_algorithm_and_audience_stay_pinned(
    hub: tuple[InProcessHub, int], provider: Provider
) -> None:
    inproc, _ = hub
    await asyncio.sleep(COOLDOWN)
    provider.publish("k1", "ec")
    # An ES256 key in the set, but the hub verifies RS256 only.
    assert (
        await _close_code(inproc, provider.token("ec", algorithm="ES256", aud="companion")) == 4401
    )
    assert await _close_code(inproc, provider.token("k1", aud="someone-else")) == 4401
    assert await _close_code(inproc, provider.token("k1")) == 4401  # no aud
    assert await _close_code(inproc, provider.token("k1", aud="companion")) == 1000


@pytest.mark.parametrize(
    ("secret", "public", "alg", "says"),
    [
        ("s" * 40, None, "RS256", "not both"),
        (None, "-----BEGIN PUBLIC KEY-----", "RS256", "not both"),
        (None, None, "HS256", "RS256, ES256"),
    ],
)
def test_a_jwks_url_is_refused_with_a_key_or_an_hmac_algorithm(
    secret: str | None, public: str | None, alg: str, says: str
) -> None:
    with pytest.raises(KeyConfigError, match=says):
        check_keys(secret, public, alg, "https://idp.example/.well-known/jwks.json")
