"""The Redis broker: several hub processes as one (Centrifugo's Redis broker is the model).

One noun per module:

    keys.py        the names of a session's keys and channel (one hash tag per session)
    scripts/       the Lua, one file per script; seed.lua and now.lua are shared prefixes
    stream.py      seq, epoch and history: publish, position, history (meta + stream keys)
    subscriber.py  the pub/sub reader: reconnect with backoff, ping watchdog, catch-up
    echo.py        the echo barrier: a publisher waits for its own event to come back
    presence.py    presence hash + zset, the heartbeat and the reaper (hands over Leaves)
    broker.py      RedisBroker, composing them
"""

from __future__ import annotations

from companion_ws.broker.redis.broker import RedisBroker
from companion_ws.broker.redis.presence import RedisPresence

__all__ = ["RedisBroker", "RedisPresence"]
