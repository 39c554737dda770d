"""Hypothesis strategies shared by the unit tests: JSON values as the wire carries them."""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

# No per-example deadline: the suite runs on a loaded 2-core machine, and a GC pause is
# not a bug. (The properties, not the speed, are under test; speed belongs in bench/.)
relaxed = settings(deadline=None)

# msgspec encodes 64-bit integers; floats are finite (JSON has no NaN or infinity).
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)

json_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=25,
)

json_objects: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.text(max_size=8), json_values, max_size=5
)

# Small key alphabets make patches and targets share keys, so merges actually collide.
_keys = st.sampled_from(["a", "b", "c", "ui", "quotes"])

patches: st.SearchStrategy[dict[str, Any]] = st.recursive(
    st.dictionaries(_keys, _scalars, max_size=4),
    lambda children: st.dictionaries(_keys, _scalars | children | st.lists(_scalars), max_size=4),
    max_leaves=15,
)
