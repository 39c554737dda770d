"""Integrations with the outside: the ElevenLabs voice-agent bridge and its commands.

The HTTP side (server tools, the post-call webhook) is ``companion_ws.endpoints.elevenlabs``.
"""

__all__ = [
    "cli",
    "elevenlabs",
]
