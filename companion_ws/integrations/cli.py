"""``companion-ws agent`` (the ElevenLabs bridge) and ``companion-ws tools --elevenlabs``.

companion-ws agent --agent-id A --session-id S [--url ws://127.0.0.1:8000]
    [env COMPANION_TOKEN | --token-stdin] [env ELEVENLABS_API_KEY]
    [--base-url U | env ELEVENLABS_BASE_URL] [--requires-auth] [--audio null|text|device]
companion-ws tools --elevenlabs [--tools MODULE ...] [--server-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from typing import Any

from companion_ws.secrets_input import read_secret
from companion_ws.settings import Settings
from companion_ws.tools.registry import Tool, ToolRegistry

TOOL_SECRET_ID = "<workspace secret id of COMPANION_ELEVENLABS_TOOL_SECRET>"


def _registry(args: argparse.Namespace) -> ToolRegistry:
    overrides: dict[str, Any] = {"tools": tuple(args.tools) if args.tools else None}
    settings = Settings.from_env(os.environ, **overrides)
    return ToolRegistry.from_modules(settings.tools)


# ---------------------------------------------------------------- tools


def webhook_definition(t: Tool, server_url: str) -> dict[str, Any]:
    """The same tool as an ElevenLabs *server* (webhook) tool calling
    ``POST {server_url}/elevenlabs/tools/{name}`` with the shared-secret header."""
    client = t.elevenlabs_definition()
    return {
        "type": "webhook",
        "name": client["name"],
        "description": client["description"],
        "response_timeout_secs": client["response_timeout_secs"],
        "api_schema": {
            "url": f"{server_url.rstrip('/')}/elevenlabs/tools/{t.name}",
            "method": "POST",
            "content_type": "application/json",
            "request_headers": {"X-Companion-Tool-Secret": {"secret_id": TOOL_SECRET_ID}},
            "request_body_schema": client["parameters"],
        },
        "dynamic_variables": client["dynamic_variables"],
    }


def cmd_tools(args: argparse.Namespace) -> int:
    if not args.elevenlabs:
        print("companion-ws tools: say which format, e.g. --elevenlabs", file=sys.stderr)
        return 2
    try:
        registry = _registry(args)
    except RuntimeError as exc:
        print(f"companion-ws: {exc}", file=sys.stderr)
        return 2
    if args.server_url:
        definitions = [webhook_definition(t, args.server_url) for t in registry]
    else:
        definitions = [t.elevenlabs_definition() for t in registry]
    print(json.dumps(definitions, indent=2))
    return 0


# ---------------------------------------------------------------- agent


def cmd_agent(args: argparse.Namespace) -> int:
    token = read_secret("COMPANION_TOKEN", from_stdin=args.token_stdin)
    if not token:
        print(
            "companion-ws agent: set COMPANION_TOKEN, or pipe it in with --token-stdin",
            file=sys.stderr,
        )
        return 2
    try:
        registry = _registry(args)
    except RuntimeError as exc:
        print(f"companion-ws: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    from companion_ws.integrations.elevenlabs import AgentBridge, BridgeConfig, BridgeError

    config = BridgeConfig(
        agent_id=args.agent_id,
        session_id=args.session_id,
        hub_url=args.url,
        token=token,
        api_key=read_secret("ELEVENLABS_API_KEY", from_stdin=False),
        base_url=args.base_url or os.environ.get("ELEVENLABS_BASE_URL") or None,
        requires_auth=args.requires_auth,
        audio=args.audio,
        keepalive=args.keepalive,
        forward_transcripts=not args.no_transcripts,
    )

    async def run() -> str:
        from companion_ws.integrations.voice_holder import run_holding

        bridge = AgentBridge(config, registry)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, bridge.stop)
        try:
            return await run_holding(bridge)  # the voice floor: voice_holder.py
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    try:
        outcome = asyncio.run(run())
    except BridgeError as exc:
        print(f"companion-ws agent: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"companion-ws agent: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"companion-ws agent: {outcome}", file=sys.stderr)
    return 0


def register(subparsers: Any) -> None:
    """Add ``agent`` and ``tools`` to the ``companion-ws`` parser."""
    agent = subparsers.add_parser(
        "agent", help="run an ElevenLabs conversation bridged to a hub session"
    )
    agent.add_argument("--agent-id", required=True, help="the ElevenLabs agent id")
    agent.add_argument("--session-id", required=True, help="the hub session to join")
    agent.add_argument("--url", default="ws://127.0.0.1:8000", help="the hub's WebSocket URL")
    agent.add_argument(
        "--token-stdin",
        action="store_true",
        help="read the hub token from standard input (default: $COMPANION_TOKEN); the "
        "ElevenLabs API key comes from $ELEVENLABS_API_KEY",
    )
    agent.add_argument(
        "--base-url", help="ElevenLabs API base URL (env ELEVENLABS_BASE_URL; default: production)"
    )
    agent.add_argument(
        "--requires-auth",
        action="store_true",
        help="a private agent: fetch a signed URL with the API key",
    )
    agent.add_argument(
        "--audio",
        choices=["null", "text", "device"],
        default="null",
        help="null: no mic/speaker (default); text: chat mode (needs the text_only override "
        "allowed); device: mic and speaker (pip install 'elevenlabs[pyaudio]')",
    )
    agent.add_argument(
        "--keepalive",
        type=float,
        default=5.0,
        help="seconds between silence chunks in null mode (0: never)",
    )
    agent.add_argument(
        "--no-transcripts",
        action="store_true",
        help="do not publish what the user and the agent say (transcript frames) to the session",
    )
    agent.add_argument(
        "--tools", nargs="+", metavar="MODULE", help="tool modules (COMPANION_TOOLS)"
    )
    agent.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    agent.set_defaults(func=cmd_agent)

    tools = subparsers.add_parser("tools", help="print the registered tools' definitions")
    tools.add_argument(
        "--elevenlabs",
        action="store_true",
        help="as ElevenLabs tool definitions (JSON), ready to paste",
    )
    tools.add_argument(
        "--tools", nargs="+", metavar="MODULE", help="tool modules (COMPANION_TOOLS)"
    )
    tools.add_argument(
        "--server-url",
        help="print server (webhook) tools calling this hub URL instead of client tools",
    )
    tools.set_defaults(func=cmd_tools)
