"""The stand-in's REST side: the ElevenLabs agent and tool endpoints the official SDK
calls to set an agent up (``companion-ws elevenlabs provision``), kept in memory.

Requests are read with the SDK's own request models (``ToolRequestModel``,
``ConversationalConfig``, ``AgentPlatformSettingsRequestModel``), so a body the real
API's schema would not take is refused 422 here too; answers have the real responses'
shapes (``ToolResponseModel``, ``ToolsResponseModel``, ``CreateAgentResponseModel``,
``GetAgentResponseModel``, ``GetAgentsPageResponseModel``). An ``xi-api-key`` other than
the one given is refused 401, as the platform does.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

import pydantic
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["AgentsApi"]

Json = dict[str, Any]


def merged(old: Json, new: Json) -> Json:
    """``new`` over ``old``, object by object (a PATCH). [pure]"""
    out = dict(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


#: Who may do what with an agent or a tool: the stand-in's one user made everything.
_ACCESS_INFO: Json = {
    "is_creator": True,
    "creator_name": "stand-in",
    "creator_email": "",
    "role": "admin",
}


def _detail(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": {"status": "error", "message": message}}, status_code=status)


class AgentsApi:
    """Agents and tools, by id, in memory; :attr:`app` serves them."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.agents: dict[str, Json] = {}
        self.tools: dict[str, Json] = {}
        self._ids = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/v1/convai/tools", self._list_tools, methods=["GET"]),
                Route("/v1/convai/tools", self._create_tool, methods=["POST"]),
                Route("/v1/convai/tools/{tool_id}", self._get_tool, methods=["GET"]),
                Route("/v1/convai/tools/{tool_id}", self._update_tool, methods=["PATCH"]),
                Route("/v1/convai/agents", self._list_agents, methods=["GET"]),
                Route("/v1/convai/agents/create", self._create_agent, methods=["POST"]),
                Route("/v1/convai/agents/{agent_id}", self._get_agent, methods=["GET"]),
                Route("/v1/convai/agents/{agent_id}", self._update_agent, methods=["PATCH"]),
            ]
        )

    async def _body(self, request: Request) -> Json | JSONResponse:
        if request.headers.get("xi-api-key") != self.api_key:
            return _detail(401, "Invalid API key")
        if request.method == "GET":
            return {}
        body = await request.json()
        return body if isinstance(body, dict) else _detail(422, "the body must be an object")

    async def _entry(
        self, request: Request, store: dict[str, Json], kind: str
    ) -> tuple[str, Json] | JSONResponse:
        """The ``{kind}_id`` in the path, if ``store`` holds it, and the request's body."""
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        entry_id = request.path_params[f"{kind}_id"]
        if entry_id not in store:
            return _detail(404, f"no {kind} {entry_id}")
        return entry_id, body

    # ------------------------------------------------------------ tools

    def _tool(self, tool_id: str) -> Json:
        return {
            "id": tool_id,
            "tool_config": self.tools[tool_id],
            "access_info": dict(_ACCESS_INFO),
            "usage_stats": {"avg_latency_secs": 0.0, "total_calls": 0},
        }

    @staticmethod
    def _config(body: Json) -> Json | JSONResponse:
        from elevenlabs.types import ToolRequestModel

        try:
            ToolRequestModel.model_validate(body)
        except pydantic.ValidationError as exc:
            return _detail(422, str(exc))
        config = body["tool_config"]
        return config if isinstance(config, dict) else _detail(422, "tool_config")

    async def _list_tools(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        search = request.query_params.get("search") or ""
        tools = [
            self._tool(i)
            for i, t in self.tools.items()
            if str(t.get("name", "")).startswith(search)
        ]
        return JSONResponse({"tools": tools, "has_more": False, "next_cursor": None})

    async def _create_tool(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        config = self._config(body)
        if isinstance(config, JSONResponse):
            return config
        tool_id = f"tool_{uuid.uuid4().hex[:16]}"
        self.tools[tool_id] = config
        return JSONResponse(self._tool(tool_id))

    async def _get_tool(self, request: Request) -> JSONResponse:
        found = await self._entry(request, self.tools, "tool")
        if isinstance(found, JSONResponse):
            return found
        tool_id, _ = found
        return JSONResponse(self._tool(tool_id))

    async def _update_tool(self, request: Request) -> JSONResponse:
        found = await self._entry(request, self.tools, "tool")
        if isinstance(found, JSONResponse):
            return found
        tool_id, body = found
        config = self._config(body)
        if isinstance(config, JSONResponse):
            return config
        self.tools[tool_id] = config
        return JSONResponse(self._tool(tool_id))

    # ------------------------------------------------------------ agents

    @staticmethod
    def _agent_fields(body: Json) -> Json | JSONResponse:
        from elevenlabs.types import AgentPlatformSettingsRequestModel, ConversationalConfig

        try:
            if body.get("conversation_config") is not None:
                ConversationalConfig.model_validate(body["conversation_config"])
            if body.get("platform_settings") is not None:
                AgentPlatformSettingsRequestModel.model_validate(body["platform_settings"])
        except pydantic.ValidationError as exc:
            return _detail(422, str(exc))
        keep = ("conversation_config", "platform_settings", "name", "tags")
        return {k: body[k] for k in keep if body.get(k) is not None}

    async def _list_agents(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        search = (request.query_params.get("search") or "").lower()
        agents = [
            {
                "agent_id": agent_id,
                "name": agent["name"],
                "voice_id": "",
                "tags": agent.get("tags", []),
                "created_at_unix_secs": agent["metadata"]["created_at_unix_secs"],
                "access_info": dict(_ACCESS_INFO),
            }
            for agent_id, agent in self.agents.items()
            if search in agent["name"].lower()
        ]
        return JSONResponse({"agents": agents, "has_more": False, "next_cursor": None})

    async def _create_agent(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        if not isinstance(body.get("conversation_config"), dict):
            return _detail(422, "conversation_config is required")
        fields = self._agent_fields(body)
        if isinstance(fields, JSONResponse):
            return fields
        agent_id = f"agent_{next(self._ids):04d}{uuid.uuid4().hex[:12]}"
        self.agents[agent_id] = {
            "name": "",
            "tags": [],
            "platform_settings": {},
            **fields,
            "metadata": {"created_at_unix_secs": int(time.time())},
        }
        return JSONResponse({"agent_id": agent_id})

    async def _get_agent(self, request: Request) -> JSONResponse:
        found = await self._entry(request, self.agents, "agent")
        if isinstance(found, JSONResponse):
            return found
        agent_id, _ = found
        return JSONResponse({"agent_id": agent_id, **self.agents[agent_id]})

    async def _update_agent(self, request: Request) -> JSONResponse:
        found = await self._entry(request, self.agents, "agent")
        if isinstance(found, JSONResponse):
            return found
        agent_id, body = found
        fields = self._agent_fields(body)
        if isinstance(fields, JSONResponse):
            return fields
        self.agents[agent_id] = merged(self.agents[agent_id], fields)
        return JSONResponse({"agent_id": agent_id, **self.agents[agent_id]})
