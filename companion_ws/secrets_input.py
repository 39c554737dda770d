"""Secrets for the command line, never from its arguments (``ps`` shows those to every
user of the machine): from the environment, or one line of standard input."""

from __future__ import annotations

import os
import sys
from typing import TextIO

__all__ = ["read_secret"]


def read_secret(env: str, *, from_stdin: bool, stdin: TextIO | None = None) -> str | None:
    """The secret: one line of standard input when ``from_stdin``, else ``$env``."""
    if from_stdin:
        line = (stdin or sys.stdin).readline().strip()
        return line or None
    return os.environ.get(env) or None
