"""companion_ws: one live session for a voice agent and its companion screens."""

__version__ = "0.1.0"

__all__ = [
    "__version__",
]
