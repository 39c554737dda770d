"""The merge patch -> JSON Patch converter: applying its operations (with the
``jsonpatch`` package, an independent RFC 6902 implementation) gives what the merge
patch gives, for any document and patch."""

from __future__ import annotations

from typing import Any

import jsonpatch
from hypothesis import given, settings
from hypothesis import strategies as st

from companion_ws.agui.patches import merge_patch_ops, pointer
from ui_state import merge_patch

_keys = st.sampled_from(["a", "b", "c", "x/y", "t~0", ""])
_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)
_documents = st.dictionaries(_keys, _json, max_size=4)
_patches = st.dictionaries(_keys, _json, max_size=4)


def _apply(doc: Any, ops: list[dict[str, Any]]) -> Any:
    return jsonpatch.apply_patch(doc, ops)


@settings(deadline=None)
@given(_documents, _patches)
def test_the_operations_do_what_the_merge_patch_does(doc: Any, patch: Any) -> None:
    ops = merge_patch_ops(doc, patch)
    assert _apply(doc, ops) == merge_patch(doc, patch)


@settings(deadline=None)
@given(_documents, _patches)
def test_a_patch_applied_twice_gives_no_operation_the_second_time(doc: Any, patch: Any) -> None:
    once = merge_patch(doc, patch)
    assert merge_patch_ops(once, patch) == []


def test_members_are_added_replaced_and_removed_by_path() -> None:
    prior = {"ui": {"step": "quote", "scroll": 3}, "quotes": [1], "gone": 1}
    patch = {"ui": {"step": "label", "scroll": None, "new": {"k": None, "v": 1}}, "gone": None}
    assert merge_patch_ops(prior, patch) == [
        {"op": "replace", "path": "/ui/step", "value": "label"},
        {"op": "remove", "path": "/ui/scroll"},
        {"op": "add", "path": "/ui/new", "value": {"v": 1}},  # nulls inside mean nothing
        {"op": "remove", "path": "/gone"},
    ]


def test_deleting_a_missing_member_is_no_operation() -> None:
    assert merge_patch_ops({"a": 1}, {"b": None}) == []


def test_an_object_patch_over_a_scalar_replaces_it() -> None:
    assert merge_patch_ops({"a": 1}, {"a": {"b": 2}}) == [
        {"op": "replace", "path": "/a", "value": {"b": 2}}
    ]


def test_member_names_are_escaped_as_rfc_6901_says() -> None:
    assert pointer("", "a/b~c") == "/a~1b~0c"
    assert merge_patch_ops({}, {"a/b": 1}) == [{"op": "add", "path": "/a~1b", "value": 1}]
