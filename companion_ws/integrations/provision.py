"""``companion-ws elevenlabs provision``: a real ElevenLabs agent for this hub in one
command, through the official SDK (docs/elevenlabs.md, "One command").

It creates, or updates when one of the same name (or ``--agent-id``) exists:

- one *client* tool per registered hub tool (``companion-ws tools --elevenlabs``), with
  ``session_id`` filled by the platform from the dynamic variable, never by the LLM;
- the agent: its prompt written from the tool pack, a first message, the ``session_id``
  dynamic variable, the tools by id, authentication on (only signed conversations, which
  the hub asks for, may open it), and the ``text_only`` override the bridge's chat mode
  sends;

then prints the environment lines that make the hub's page talk to it.

companion-ws elevenlabs provision [--name N] [--agent-id A] [--tools MODULE ...]
    [--first-message TEXT] [--language en] [--llm gpt-4o-mini]
    env ELEVENLABS_API_KEY (or COMPANION_ELEVENLABS_API_KEY)
    [--base-url U | env ELEVENLABS_BASE_URL | COMPANION_ELEVENLABS_BASE_URL]
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any

from companion_ws.settings import DEFAULT_ELEVENLABS_BASE_URL, Settings
from companion_ws.tools.registry import Tool, ToolRegistry

__all__ = ["AgentPlan", "plan_agent", "register"]

DEFAULT_NAME = "companion-ws"
DEFAULT_FIRST_MESSAGE = (
    "Hi! I can see the same screen you do. Tell me what you need and I'll put it there."
)


@dataclass(frozen=True)
class AgentPlan:
    """What the platform is asked for: the tools' definitions and the agent's settings
    (without the tools' ids, known once the tools exist). [pure]"""

    name: str
    tools: list[dict[str, Any]]
    conversation_config: dict[str, Any]
    platform_settings: dict[str, Any]


def prompt_for(tools: list[Tool]) -> str:
    """A system prompt that fits the tool pack: what the agent is for, each tool with its
    description, and the rules the hub's screens rely on. [pure]"""
    lines = [
        "You are a voice assistant working alongside the user's screen. The user sees a "
        "companion page that shows what your tools do as you do it: results, choices, "
        "progress. Keep spoken answers short and let the screen carry the details "
        '("I\'ve put three options on your screen").',
        "",
        "Your tools (call them rather than guessing; each one updates the screen):",
    ]
    lines += [f"- {t.name}: {t.description}" for t in tools]
    lines += [
        "",
        "Rules:",
        "- Ask for what a tool needs before calling it; never invent values.",
        "- When the user picks something on the screen, you are told; confirm it aloud.",
        "- If a tool answers with an error, say what went wrong in plain words and how to fix it.",
        "- Never read out identifiers, tokens or the session id.",
    ]
    return "\n".join(lines)


def plan_agent(
    registry: ToolRegistry,
    *,
    name: str = DEFAULT_NAME,
    first_message: str = DEFAULT_FIRST_MESSAGE,
    language: str = "en",
    llm: str | None = None,
) -> AgentPlan:
    """The agent for ``registry``'s tools. [pure]"""
    tools = list(registry)
    prompt: dict[str, Any] = {"prompt": prompt_for(tools)}
    if llm:
        prompt["llm"] = llm
    agent = {
        "first_message": first_message,
        "language": language,
        "prompt": prompt,
        # The page and the bridge start each conversation with the session's agent
        # capability in this variable; every tool's session_id parameter is bound to it.
        "dynamic_variables": {"dynamic_variable_placeholders": {"session_id": ""}},
    }
    return AgentPlan(
        name=name,
        tools=[t.elevenlabs_definition() for t in tools],
        conversation_config={"agent": agent},
        platform_settings={
            "auth": {"enable_auth": True},
            "overrides": {"conversation_config_override": {"conversation": {"text_only": True}}},
        },
    )


# ---------------------------------------------------------------- the SDK


def _tool_ids(client: Any, definitions: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Each definition created, or updated in place when a tool of its name exists:
    (the ids in order, a line per tool for the operator)."""
    from elevenlabs.types import ToolRequestModel

    ids, said = [], []
    for definition in definitions:
        request = ToolRequestModel.model_validate({"tool_config": definition})
        existing = [
            t
            for t in client.conversational_ai.tools.list(search=definition["name"]).tools
            if getattr(t.tool_config, "name", None) == definition["name"]
        ]
        if existing:
            tool = client.conversational_ai.tools.update(existing[0].id, request=request)
            said.append(f"updated tool {definition['name']} ({tool.id})")
        else:
            tool = client.conversational_ai.tools.create(request=request)
            said.append(f"created tool {definition['name']} ({tool.id})")
        ids.append(tool.id)
    return ids, said


def provision(client: Any, plan: AgentPlan, agent_id: str | None = None) -> tuple[str, list[str]]:
    """Apply ``plan`` on the platform: (the agent's id, what was done, line by line)."""
    from elevenlabs.types import AgentPlatformSettingsRequestModel, ConversationalConfig

    ids, said = _tool_ids(client, plan.tools)
    agent = {**plan.conversation_config["agent"]}
    agent["prompt"] = {**agent["prompt"], "tool_ids": ids}
    config = ConversationalConfig.model_validate({**plan.conversation_config, "agent": agent})
    platform = AgentPlatformSettingsRequestModel.model_validate(plan.platform_settings)
    agents = client.conversational_ai.agents
    if agent_id is None:
        found = [a for a in agents.list(search=plan.name).agents if a.name == plan.name]
        agent_id = found[0].agent_id if found else None
    if agent_id is None:
        made = agents.create(conversation_config=config, platform_settings=platform, name=plan.name)
        said.append(f"created agent {plan.name} ({made.agent_id})")
        return str(made.agent_id), said
    agents.update(agent_id, conversation_config=config, platform_settings=platform, name=plan.name)
    said.append(f"updated agent {plan.name} ({agent_id})")
    return agent_id, said


def env_lines(agent_id: str, base_url: str) -> list[str]:
    """What to set for the hub's page to talk to the agent (docs/protocol.md section 14);
    the API key by reference, never echoed. [pure]"""
    lines = [
        f"export COMPANION_ELEVENLABS_AGENT_ID={agent_id}",
        'export COMPANION_ELEVENLABS_API_KEY="$ELEVENLABS_API_KEY"',
    ]
    if base_url.rstrip("/") != DEFAULT_ELEVENLABS_BASE_URL:
        lines.append(f"export COMPANION_ELEVENLABS_BASE_URL={base_url}")
    return lines


def cmd_provision(args: argparse.Namespace) -> int:
    env = os.environ
    key = env.get("ELEVENLABS_API_KEY") or env.get("COMPANION_ELEVENLABS_API_KEY")
    if not key:
        print(
            "companion-ws elevenlabs provision: set ELEVENLABS_API_KEY (an API key from "
            "elevenlabs.io, Developers > API keys, with Conversational AI write access)",
            file=sys.stderr,
        )
        return 2
    base_url = (
        args.base_url
        or env.get("ELEVENLABS_BASE_URL")
        or env.get("COMPANION_ELEVENLABS_BASE_URL")
        or DEFAULT_ELEVENLABS_BASE_URL
    )
    try:
        settings = Settings.from_env(env, tools=tuple(args.tools) if args.tools else None)
        registry = ToolRegistry.from_modules(settings.tools)
    except RuntimeError as exc:
        print(f"companion-ws: {exc}", file=sys.stderr)
        return 2
    plan = plan_agent(
        registry,
        name=args.name,
        first_message=args.first_message,
        language=args.language,
        llm=args.llm,
    )
    from elevenlabs.core.api_error import ApiError

    from companion_ws.integrations.elevenlabs_sdk import ElevenLabs

    client = ElevenLabs(api_key=key, base_url=base_url)
    try:
        agent_id, said = provision(client, plan, args.agent_id)
    except ApiError as exc:
        print(
            f"companion-ws elevenlabs provision: the platform refused ({exc.status_code}): "
            f"{exc.body}",
            file=sys.stderr,
        )
        return 1
    for line in said:
        print(f"# {line}")
    print("# authentication is on: the hub signs each conversation with your API key.")
    print("# Set these where the hub runs, then restart it; the page's Talk card turns on:")
    for line in env_lines(agent_id, base_url):
        print(line)
    return 0


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("elevenlabs", help="set up an ElevenLabs voice agent")
    actions = group.add_subparsers(dest="action", required=True)
    cmd = actions.add_parser(
        "provision",
        help="create or update an ElevenLabs agent with this hub's tools, and print the "
        "environment lines to set",
    )
    cmd.add_argument(
        "--name", default=DEFAULT_NAME, help=f"the agent's name (default {DEFAULT_NAME})"
    )
    cmd.add_argument(
        "--agent-id", help="update this agent (default: the one named --name, or a new one)"
    )
    cmd.add_argument(
        "--tools",
        nargs="+",
        metavar="MODULE",
        help="tool modules (default: $COMPANION_TOOLS or the shipping pack)",
    )
    cmd.add_argument("--first-message", default=DEFAULT_FIRST_MESSAGE)
    cmd.add_argument("--language", default="en")
    cmd.add_argument("--llm", help="the agent's LLM (default: the platform's)")
    cmd.add_argument("--base-url", help=f"the API (default {DEFAULT_ELEVENLABS_BASE_URL})")
    cmd.set_defaults(func=cmd_provision)
