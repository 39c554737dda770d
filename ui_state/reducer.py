"""The reducer: state + patch -> new state at version + 1."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ui_state.document import (
    InvalidPatch,
    StateDoc,
    StateTooLarge,
    VersionConflict,
    encoded_size,
    merge_patch,
)


def apply_patch(
    doc: StateDoc,
    patch: Any,
    *,
    expected_version: int | None = None,
    max_bytes: int,
) -> StateDoc:
    """Apply a merge patch to ``doc``.

    Raises :class:`InvalidPatch` unless the patch is a JSON object,
    :class:`VersionConflict` when ``expected_version`` is given and differs from
    ``doc.version``, and :class:`StateTooLarge` when the result would encode to more
    than ``max_bytes``. ``doc`` is never modified.
    """
    if not isinstance(patch, Mapping):
        raise InvalidPatch("a state patch must be a JSON object")
    if expected_version is not None and expected_version != doc.version:
        raise VersionConflict(doc.version, expected_version)
    new_state = merge_patch(doc.state, patch)
    size = encoded_size(new_state)
    if size > max_bytes:
        raise StateTooLarge(size, max_bytes)
    return StateDoc(state=new_state, version=doc.version + 1)
