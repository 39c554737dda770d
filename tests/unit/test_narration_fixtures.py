"""The agent's sentences (``ui_state`` summaries, the narrator's ``describe_update``)
against the shared fixtures in tests/fixtures/narration, which the page's narration.js
runs too (tests/js/narration.test.mjs): the page that talks tells the agent what the
bridge would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from companion_ws.integrations.narrator import describe_update
from ui_state import create_session_context, describe_change, merge_patch

CASES: dict[str, list[dict[str, Any]]] = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "narration" / "cases.json").read_text()
)


@pytest.mark.parametrize("case", CASES["summaries"], ids=lambda c: c["name"])
def test_summary(case: dict[str, Any]) -> None:
    said = create_session_context(case["state"], case.get("messages", ()), last=case.get("last", 4))
    assert said == case["expected"]


@pytest.mark.parametrize("case", CASES["changes"], ids=lambda c: c["name"])
def test_change(case: dict[str, Any]) -> None:
    after = merge_patch(case["before"], case["patch"])
    assert describe_change(case["patch"], after) == case["expected"]


@pytest.mark.parametrize("case", CASES["updates"], ids=lambda c: c["name"])
def test_update(case: dict[str, Any]) -> None:
    assert describe_update(case["frame"]) == case["expected"]
