"""The state document and RFC 7386 JSON merge patches.

A session's state is a JSON object with a version counter. Patches are applied by
:func:`merge_patch`, which never mutates its inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

JSONObject = dict[str, Any]

_encoder = msgspec.json.Encoder()


class StateError(Exception):
    """Base of the state document's errors."""


class InvalidPatch(StateError):
    """The patch is not a JSON object, or a key path is malformed."""


class VersionConflict(StateError):
    """The caller expected another version than the current one."""

    def __init__(self, current_version: int, expected_version: int) -> None:
        super().__init__(
            f"expected version {expected_version}, the state is at version {current_version}"
        )
        self.current_version = current_version
        self.expected_version = expected_version


class StateTooLarge(StateError):
    """The patched state would be larger than the configured limit."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the state would be {size} bytes, over the limit of {limit} bytes")
        self.size = size
        self.limit = limit


@dataclass(frozen=True, slots=True)
class StateDoc:
    """A state document at a version. ``version`` 0 is the empty initial state."""

    state: JSONObject = field(default_factory=dict)
    version: int = 0


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch to ``target`` and return the result.

    Objects merge key by key, ``null`` deletes a key, and anything else replaces the
    target. Neither argument is modified.
    """
    if not isinstance(patch, Mapping):
        return patch
    result: JSONObject = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def key_patch(key: str, value: Any) -> JSONObject:
    """The merge patch that sets one (dotted) key path: ``"ui.step"`` -> ``{"ui": {"step": v}}``."""
    parts = key.split(".")
    if not key or any(not part for part in parts):
        raise InvalidPatch(f"key {key!r} is not a dotted path of non-empty names")
    patch: Any = value
    for part in reversed(parts):
        patch = {part: patch}
    result: JSONObject = patch
    return result


def encoded_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON."""
    return len(_encoder.encode(value))
