"""ui_state.document: RFC 7386 merge patches, dotted key patches, sizes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given

from tests.unit.strategies import json_values, patches, relaxed
from ui_state import InvalidPatch, encoded_size, key_patch, merge_patch

# RFC 7386, Appendix A: (original, patch, result).
RFC7386_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("original", "patch", "result"), RFC7386_EXAMPLES)
def test_merge_patch_matches_the_rfc_7386_appendix(original: Any, patch: Any, result: Any) -> None:
    assert merge_patch(original, patch) == result


@relaxed
@given(target=patches, patch=patches)
def test_merge_patch_never_mutates_its_inputs(target: Any, patch: Any) -> None:
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    merge_patch(target, patch)
    assert target == target_before
    assert patch == patch_before


@relaxed
@given(target=patches, patch=patches)
def test_applying_a_patch_twice_changes_nothing_more(target: Any, patch: Any) -> None:
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once


@relaxed
@given(target=json_values, patch=patches)
def test_every_non_null_leaf_of_the_patch_is_in_the_result(target: Any, patch: Any) -> None:
    def check(result: Any, patch: Any) -> None:
        for key, value in patch.items():
            if value is None:
                assert key not in result
            elif isinstance(value, dict):
                check(result[key], value)
            else:
                assert result[key] == value

    check(merge_patch(target, patch), patch)


def test_key_patch_builds_the_nested_patch_of_a_dotted_key() -> None:
    assert key_patch("ui.current_step", "label") == {"ui": {"current_step": "label"}}
    assert key_patch("quotes", [1]) == {"quotes": [1]}
    assert key_patch("a.b.c", None) == {"a": {"b": {"c": None}}}


@pytest.mark.parametrize("key", ["", ".", "a.", ".a", "a..b"])
def test_key_patch_refuses_an_empty_name(key: str) -> None:
    with pytest.raises(InvalidPatch):
        key_patch(key, 1)


def test_encoded_size_is_the_compact_json_length() -> None:
    assert encoded_size({}) == 2
    assert encoded_size({"a": [1, 2]}) == len('{"a":[1,2]}')
    assert encoded_size({"é": "€"}) == len('{"é":"€"}'.encode())
