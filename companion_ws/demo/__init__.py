"""``companion-ws demo``: the whole product in one command, with a scripted voice agent
(the real bridge and ElevenLabs SDK against a local stand-in of the platform)."""
