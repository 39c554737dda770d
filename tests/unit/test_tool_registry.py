"""The tool registry: typed tools, parameters validated before a tool runs (a bad one
named in the error), modules loaded by name, and ElevenLabs definitions that the SDK's
own models accept."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pytest
from elevenlabs import ToolRequestModel
from elevenlabs.types import ClientToolConfigInput, WebhookToolConfigInput

from companion_ws.cli import main
from companion_ws.integrations.cli import TOOL_SECRET_ID, webhook_definition
from companion_ws.tools.registry import (
    State,
    Tool,
    ToolError,
    ToolOutcome,
    ToolRegistry,
    tool,
)

Count = Annotated[int, msgspec.Meta(ge=1, le=10, description="How many")]


@tool(description="Repeat a word.")
async def repeat(state: State, word: str, count: Count = 2, loud: bool = False) -> ToolOutcome:
    text = " ".join([word.upper() if loud else word] * count)
    return ToolOutcome(result={"text": text, "seen": state.get("seen")}, patch={"said": text})


@tool(name="tag_items", description="Tag items.")
async def tag(state: State, items: list[str]) -> ToolOutcome:
    return ToolOutcome(result=[f"#{i}" for i in items])


async def test_a_tool_is_named_described_and_runs_on_the_state() -> None:
    assert isinstance(repeat, Tool) and repeat.name == "repeat"
    assert tag.name == "tag_items" and tag.description == "Tag items."
    outcome = await repeat.run({"seen": 1}, {"word": "hi", "count": 3})
    assert outcome.result == {"text": "hi hi hi", "seen": 1}
    assert outcome.patch == {"said": "hi hi hi"}


def test_parameters_are_validated_and_a_bad_one_is_named() -> None:
    assert repeat.parse({"word": "hi"}) == {"word": "hi", "count": 2, "loud": False}
    # What the platform adds is not the tool's: ignored.
    assert repeat.parse({"word": "x", "session_id": "s", "tool_call_id": "t"})["word"] == "x"
    cases: list[tuple[str, dict[str, Any]]] = [
        ("count", {"word": "hi", "count": 0}),
        ("count", {"word": "hi", "count": "3"}),
        ("word", {"count": 3}),
        ("loud", {"word": "hi", "loud": "yes"}),
        ("shout", {"word": "hi", "shout": True}),
    ]
    for named, params in cases:
        with pytest.raises(ToolError) as caught:
            repeat.parse(params)
        assert named in str(caught.value), (params, caught.value)


def test_a_tool_must_be_async_and_keep_off_reserved_names() -> None:
    with pytest.raises(TypeError, match="async"):

        @tool(description="x")  # type: ignore[arg-type]
        def sync_tool(state: State) -> ToolOutcome:
            return ToolOutcome(result=None)

    with pytest.raises(TypeError, match="reserved"):

        @tool(description="x")
        async def sneaky(state: State, session_id: str) -> ToolOutcome:
            return ToolOutcome(result=None)


def test_modules_are_loaded_by_name_and_a_broken_one_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = ToolRegistry.from_modules(["companion_ws.tools.shipping"])
    assert sorted(t.name for t in registry) == ["create_shipping_label", "get_shipping_quotes"]
    assert len(registry) == 2 and registry.get("nope") is None

    with pytest.raises(RuntimeError, match="cannot load tool module 'no_such_pack'"):
        ToolRegistry.from_modules(["no_such_pack"])
    with pytest.raises(RuntimeError, match="'json' defines no tools"):
        ToolRegistry.from_modules(["json"])

    (tmp_path / "broken_pack.py").write_text("raise ValueError('bad config')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RuntimeError, match=r"'broken_pack': ValueError: bad config"):
        ToolRegistry.from_modules(["broken_pack"])
    sys.modules.pop("broken_pack", None)

    with pytest.raises(ValueError, match="registered twice"):
        ToolRegistry.from_modules(["companion_ws.tools.shipping", "companion_ws.tools.shipping"])


def _check_literal(name: str, prop: dict[str, Any]) -> None:
    assert prop["type"] in {"string", "number", "integer", "boolean"}, (name, prop)
    # Exactly one source for the value: the LLM (a description) or a dynamic variable.
    sources = [k for k in ("description", "dynamic_variable", "constant_value") if k in prop]
    assert len(sources) == 1, (name, prop)


def test_the_elevenlabs_definition_is_one_the_sdk_accepts() -> None:
    registry = ToolRegistry.from_modules(["companion_ws.tools.shipping"])
    for t in [*registry, repeat]:
        definition = t.elevenlabs_definition()
        parsed = ClientToolConfigInput.model_validate(definition)
        assert parsed.name == t.name and parsed.expects_response is True
        # The body of POST /v1/convai/tools, as the SDK's own request model reads it.
        request = ToolRequestModel.model_validate({"tool_config": definition})
        assert type(request.tool_config).__name__ == "ToolRequestModelToolConfig_Client"
        properties = definition["parameters"]["properties"]
        assert properties["session_id"] == {"type": "string", "dynamic_variable": "session_id"}
        assert "session_id" in definition["parameters"]["required"]
        for name, prop in properties.items():
            _check_literal(name, prop)
            # Only the fields ElevenLabs' LiteralJsonSchemaProperty has.
            assert set(prop) <= {"type", "description", "enum", "dynamic_variable"}, prop
    quotes = registry.get("get_shipping_quotes")
    assert quotes is not None
    params = quotes.elevenlabs_definition()["parameters"]
    assert params["required"] == ["from_zip", "to_zip", "weight", "session_id"]
    assert params["properties"]["weight"] == {
        "type": "number",
        "description": "Package weight in pounds (0 < w <= 150)",
    }
    label = registry.get("create_shipping_label")
    assert label is not None
    optional = label.elevenlabs_definition()["parameters"]
    assert optional["required"] == ["session_id"]  # quote_id, carrier, service are optional
    assert optional["properties"]["quote_id"]["type"] == "string"


def test_a_list_parameter_keeps_its_item_type() -> None:
    prop = tag.elevenlabs_definition()["parameters"]["properties"]["items"]
    assert prop["type"] == "array" and prop["items"]["type"] == "string"
    ClientToolConfigInput.model_validate(tag.elevenlabs_definition())


def test_the_webhook_variant_is_one_the_sdk_accepts() -> None:
    for t in ToolRegistry.from_modules(["companion_ws.tools.shipping"]):
        definition = webhook_definition(t, "https://hub.example.com/")
        parsed = WebhookToolConfigInput.model_validate(definition)
        request = ToolRequestModel.model_validate({"tool_config": definition})
        assert type(request.tool_config).__name__ == "ToolRequestModelToolConfig_Webhook"
        assert parsed.api_schema.url == f"https://hub.example.com/elevenlabs/tools/{t.name}"
        assert definition["api_schema"]["request_headers"] == {
            "X-Companion-Tool-Secret": {"secret_id": TOOL_SECRET_ID}
        }
        body = definition["api_schema"]["request_body_schema"]
        assert body["properties"]["session_id"] == {
            "type": "string",
            "dynamic_variable": "session_id",
        }


def test_the_tools_command_prints_every_definition(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "--elevenlabs"]) == 0
    printed = json.loads(capsys.readouterr().out)
    registry = ToolRegistry.from_modules(["companion_ws.tools.shipping"])
    assert printed == [t.elevenlabs_definition() for t in registry]

    assert main(["tools", "--elevenlabs", "--server-url", "https://hub.example.com"]) == 0
    webhooks = json.loads(capsys.readouterr().out)
    assert [w["type"] for w in webhooks] == ["webhook", "webhook"]

    assert main(["tools", "--elevenlabs", "--tools", "no_such_pack"]) == 2
    assert "cannot load tool module 'no_such_pack'" in capsys.readouterr().err


def test_a_tool_declares_the_task_it_starts_or_completes_and_the_registry_shows_it() -> None:
    registry = ToolRegistry.from_modules(["companion_ws.tools.shipping"])
    quotes, label = registry.get("get_shipping_quotes"), registry.get("create_shipping_label")
    assert quotes is not None and label is not None
    assert (quotes.starts_task, quotes.completes_task) == ("shipment", None)
    assert (label.starts_task, label.completes_task) == (None, "shipment")

    started = quotes.task_change({}, task_id="t1", now=10)
    assert started is not None and started["tasks"][0]["status"] == "active"
    assert quotes.task_change(started, task_id="t2", now=11) is None  # one is active
    done = label.task_change(started, task_id="t3", now=12)
    assert done is not None and done["tasks"][0]["status"] == "completed"

    @tool(description="Nothing to do with tasks")
    async def plain(state: State) -> ToolOutcome:
        return ToolOutcome(result=None)

    assert plain.task_change(started, task_id="t4", now=13) is None
