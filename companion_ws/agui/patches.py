"""RFC 7386 merge patch -> RFC 6902 JSON Patch, given the document it applies to.

A merge patch says *what the result looks like*; a JSON Patch says *which operations
make it*, and so depends on the document: ``{"a": {"b": 1}}`` is ``add /a/b`` when ``a``
is an object, ``add /a {"b": 1}`` when it is missing, ``replace /a {"b": 1}`` when it is
something else; ``{"a": null}`` is ``remove /a`` only when ``a`` exists (removing a
missing member is an error in RFC 6902, and a no-op in RFC 7386).

Pure: ``apply(prior, merge_patch_ops(prior, patch)) == merge_patch(prior, patch)`` for
any JSON ``prior`` and ``patch`` (tests/unit/test_agui_patches.py holds it to that with
the ``jsonpatch`` package).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ui_state import merge_patch

__all__ = ["JsonPatchOp", "merge_patch_ops", "pointer"]

JsonPatchOp = dict[str, Any]


def pointer(parent: str, key: str) -> str:
    """``parent`` extended by one member name, escaped as RFC 6901 says."""
    return f"{parent}/{key.replace('~', '~0').replace('/', '~1')}"


def merge_patch_ops(prior: Any, patch: Any, path: str = "") -> list[JsonPatchOp]:
    """The JSON Patch operations that turn ``prior`` into ``merge_patch(prior, patch)``.

    Operations that would change nothing (a member set to the value it has, a missing
    member deleted) are left out, so an idempotent merge patch gives no operation.
    """
    if not isinstance(patch, Mapping) or not isinstance(prior, Mapping):
        result = merge_patch(prior, patch)
        return [] if result == prior else [{"op": "replace", "path": path, "value": result}]
    ops: list[JsonPatchOp] = []
    for key, value in patch.items():
        where = pointer(path, key)
        if value is None:
            if key in prior:
                ops.append({"op": "remove", "path": where})
        elif key not in prior:
            ops.append({"op": "add", "path": where, "value": merge_patch(None, value)})
        else:
            ops.extend(merge_patch_ops(prior[key], value, where))
    return ops
