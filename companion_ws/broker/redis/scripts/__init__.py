"""The Lua scripts, one file each. A script on a session's stream is ``seed.lua``
followed by its own lines, and a presence script ``now.lua`` followed by its own: the
shared prefix is written once and concatenated here, when the scripts are registered."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

STREAM_SCRIPTS = ("publish", "position", "history", "floor")
PRESENCE_SCRIPTS = ("presence_touch", "presence_list", "presence_reap")
STANDALONE_SCRIPTS = ("renumber",)


@cache
def _read(name: str) -> str:
    return files(__name__).joinpath(f"{name}.lua").read_text(encoding="utf-8")


def source(name: str) -> str:
    """The full text of script ``name``: its shared prefix, then its own lines."""
    if name == "floor_swap":  # the floor's compare-and-set, then publish's own lines
        return _read("seed") + _read("floor_swap") + _read("publish")
    if name in STREAM_SCRIPTS:
        return _read("seed") + _read(name)
    if name in PRESENCE_SCRIPTS:
        return _read("now") + _read(name)
    if name in STANDALONE_SCRIPTS:
        return _read(name)
    raise ValueError(f"no Lua script {name!r}")
