"""ui_state.reducer.apply_patch: version, conflicts, size limit, purity."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.strategies import patches, relaxed
from ui_state import (
    InvalidPatch,
    StateDoc,
    StateTooLarge,
    VersionConflict,
    apply_patch,
    encoded_size,
    merge_patch,
)

BIG = 1 << 20


@relaxed
@given(state=patches, version=st.integers(0, 10**6), patch=patches)
def test_a_patch_raises_the_version_by_exactly_one(
    state: dict[str, Any], version: int, patch: dict[str, Any]
) -> None:
    doc = StateDoc(state, version)
    before = copy.deepcopy(state)
    new = apply_patch(doc, patch, max_bytes=BIG)
    assert new.version == version + 1
    assert new.state == merge_patch(state, patch)
    assert doc.state == before and doc.version == version


@relaxed
@given(state=patches, patch=patches, limit=st.integers(2, 200))
def test_the_size_limit_is_respected(
    state: dict[str, Any], patch: dict[str, Any], limit: int
) -> None:
    doc = StateDoc(state, 3)
    size = encoded_size(merge_patch(state, patch))
    if size <= limit:
        assert encoded_size(apply_patch(doc, patch, max_bytes=limit).state) <= limit
    else:
        with pytest.raises(StateTooLarge) as info:
            apply_patch(doc, patch, max_bytes=limit)
        assert info.value.size == size > info.value.limit == limit


@relaxed
@given(version=st.integers(0, 100), expected=st.integers(0, 100))
def test_expected_version_must_match(version: int, expected: int) -> None:
    doc = StateDoc({"a": 1}, version)
    if expected == version:
        assert apply_patch(doc, {"b": 2}, expected_version=expected, max_bytes=BIG).version == (
            version + 1
        )
    else:
        with pytest.raises(VersionConflict) as info:
            apply_patch(doc, {"b": 2}, expected_version=expected, max_bytes=BIG)
        assert info.value.current_version == version
        assert info.value.expected_version == expected


@pytest.mark.parametrize("patch", [None, [1], "x", 3])
def test_a_patch_must_be_an_object(patch: Any) -> None:
    with pytest.raises(InvalidPatch):
        apply_patch(StateDoc(), patch, max_bytes=BIG)


def test_null_deletes_and_nested_objects_merge() -> None:
    doc = StateDoc({"ui": {"step": "quote", "scroll": 3}, "quotes": [1]}, 4)
    new = apply_patch(doc, {"ui": {"scroll": None}, "quotes": None}, max_bytes=BIG)
    assert new == StateDoc({"ui": {"step": "quote"}}, 5)
