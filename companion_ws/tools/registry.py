"""The tool registry. A tool is a typed async function of the session's state and its
parameters; it returns a :class:`ToolOutcome` (its result, the state patch and the
``contextual_update`` it causes). Parameters are validated from the signature before
the tool runs, and a bad one is named in the error.

A tool may declare the task (docs/protocol.md section 13) it starts or completes when it
succeeds; the tool runner puts that change in the same state patch as the tool's own.

    @tool(description="Shipping quotes between two ZIP codes", starts_task="shipment")
    async def get_shipping_quotes(
        state: State, from_zip: Zip, to_zip: Zip, weight: Weight
    ) -> ToolOutcome:
        ...

A tool module may also declare *state rules*: a plain function of the current state
and a merge patch a screen or the agent sends (``update_session_state``, ``PATCH
.../state``) that answers a reason to refuse it, or None. The shipping pack refuses a
pick once its label is made: a rule of the pack, not of one page.

    @state_rule
    def no_pick_after_label(state: State, patch: Any) -> str | None: ...
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, get_type_hints

import msgspec

from ui_state import tool_task_change

State = Mapping[str, Any]

#: Parameters the platform adds that are not the tool's own.
RESERVED_PARAMETERS = frozenset({"session_id", "tool_call_id"})


class ToolError(Exception):
    """The call cannot be done (a bad parameter, a missing precondition): an ``is_error``
    result with this message; the state is untouched."""


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    result: Any
    patch: dict[str, Any] | None = None
    update_text: str | None = None
    update_data: Any = None


ToolFn = Callable[..., Awaitable[ToolOutcome]]
RuleFn = Callable[[State, Any], "str | None"]


@dataclass(frozen=True, slots=True)
class StateRule:
    """A tool pack's rule on state changes from outside its tools: ``check`` answers
    why ``patch`` may not be applied to ``state``, or None when it may."""

    name: str
    check: RuleFn


def state_rule(fn: RuleFn) -> StateRule:
    """Make a :class:`StateRule` of ``fn(state, patch) -> reason | None``."""
    return StateRule(fn.__name__, fn)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    fn: ToolFn
    params: type[msgspec.Struct]
    starts_task: str | None = None  # the task a success starts, when none of it is active
    completes_task: str | None = None  # the task a success completes

    def task_change(self, state: State, *, task_id: str, now: int) -> dict[str, Any] | None:
        """The merge patch of what a success does to ``state.tasks``, or None."""
        return tool_task_change(
            state, starts=self.starts_task, completes=self.completes_task, task_id=task_id, now=now
        )

    def parse(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """Validated keyword arguments for the tool, or :class:`ToolError`."""
        own = {k: v for k, v in parameters.items() if k not in RESERVED_PARAMETERS}
        try:
            parsed = msgspec.convert(own, self.params)
        except msgspec.ValidationError as exc:
            raise ToolError(f"invalid parameter: {_plain(str(exc))}") from None
        return {f: getattr(parsed, f) for f in self.params.__struct_fields__}

    async def run(self, state: State, parameters: Mapping[str, Any]) -> ToolOutcome:
        return await self.fn(state, **self.parse(parameters))

    def schema(self) -> dict[str, Any]:
        (_, components) = msgspec.json.schema_components([self.params])
        schema: dict[str, Any] = dict(components[self.params.__name__])
        schema.pop("title", None)
        return schema

    def elevenlabs_definition(self) -> dict[str, Any]:
        """The ElevenLabs client-tool definition, with ``session_id`` bound to the
        ``session_id`` dynamic variable (so the platform, not the LLM, fills it)."""
        schema = self.schema()
        properties = {
            name: _elevenlabs_property(name, prop)
            for name, prop in schema.get("properties", {}).items()
        }
        # A property's value comes from exactly one source: no description here.
        properties["session_id"] = {"type": "string", "dynamic_variable": "session_id"}
        return {
            "type": "client",
            "name": self.name,
            "description": self.description,
            "expects_response": True,
            "response_timeout_secs": 20,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": [*schema.get("required", []), "session_id"],
            },
            "dynamic_variables": {"dynamic_variable_placeholders": {"session_id": ""}},
        }


def _elevenlabs_property(name: str, prop: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-schema property as ElevenLabs' ``LiteralJsonSchemaProperty`` takes it: one
    ``type`` (an optional value's non-null branch), a ``description`` for the LLM and an
    ``enum``. Constraints it has no field for (pattern, bounds) stay in the description
    and in the hub's own validation, which names the parameter when one is broken."""
    branches = [b for b in prop.get("anyOf", ()) if b.get("type") != "null"]
    base = {**(branches[0] if len(branches) == 1 else {}), **prop}
    out: dict[str, Any] = {
        "type": base.get("type", "string"),
        "description": base.get("description") or name.replace("_", " "),
    }
    if "enum" in base:
        out["enum"] = [str(v) for v in base["enum"]]
    if out["type"] == "array" and isinstance(base.get("items"), Mapping):
        out["items"] = _elevenlabs_property(name, base["items"])
    return out


def _plain(detail: str) -> str:
    # msgspec says "Expected `str` matching regex '...' - at `$.from_zip`": lead with the name.
    if " - at `$." in detail:
        message, _, where = detail.partition(" - at `$.")
        return f"{where.rstrip('`')}: {message}"
    return detail


def tool(
    *,
    name: str | None = None,
    description: str,
    starts_task: str | None = None,
    completes_task: str | None = None,
) -> Callable[[ToolFn], Tool]:
    """Make a :class:`Tool` of an async function ``(state, **params) -> ToolOutcome``;
    ``starts_task`` / ``completes_task`` name the task a success starts / completes."""

    def wrap(fn: ToolFn) -> Tool:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"tool {fn.__name__} must be an async function")
        hints = get_type_hints(fn, include_extras=True)
        params = list(inspect.signature(fn).parameters.values())[1:]
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        for p in params:
            if p.name in RESERVED_PARAMETERS:
                raise TypeError(f"tool parameter {p.name!r} is reserved")
            kind = hints.get(p.name, Any)
            fields.append((p.name, kind) if p.default is p.empty else (p.name, kind, p.default))
        struct = msgspec.defstruct(
            f"{fn.__name__}_params", fields, forbid_unknown_fields=True, frozen=True
        )
        return Tool(name or fn.__name__, description, fn, struct, starts_task, completes_task)

    return wrap


class ToolRegistry:
    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}
        self._rules: list[StateRule] = []

    def register(self, t: Tool) -> None:
        if t.name in self._tools:
            raise ValueError(f"tool {t.name!r} is registered twice")
        self._tools[t.name] = t

    def add_rule(self, rule: StateRule) -> None:
        self._rules.append(rule)

    def refusal(self, state: State, patch: Any) -> str | None:
        """Why the packs' rules refuse ``patch`` on ``state`` (the first that does), or
        None when every rule lets it through."""
        for rule in self._rules:
            reason = rule.check(state, patch)
            if reason is not None:
                return reason
        return None

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    @classmethod
    def from_modules(cls, modules: tuple[str, ...] | list[str]) -> ToolRegistry:
        """Load every :class:`Tool` defined in the named modules. A module that cannot be
        imported, or defines no tool, is a :class:`RuntimeError` with a clear message."""
        registry = cls()
        for module_name in modules:
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                raise RuntimeError(
                    f"cannot load tool module {module_name!r}: {type(exc).__name__}: {exc}"
                ) from exc
            found = [v for v in vars(module).values() if isinstance(v, Tool)]
            if not found:
                raise RuntimeError(f"tool module {module_name!r} defines no tools")
            for t in found:
                registry.register(t)
            for rule in vars(module).values():
                if isinstance(rule, StateRule):
                    registry.add_rule(rule)
        return registry
