"""The session state document: a JSON object, its merge patches, its version, and
the plain-language summary a voice agent is told. Pure: no I/O, no companion_ws imports."""

from ui_state.document import (
    InvalidPatch,
    StateDoc,
    StateError,
    StateTooLarge,
    VersionConflict,
    encoded_size,
    key_patch,
    merge_patch,
)
from ui_state.reducer import apply_patch
from ui_state.summary import create_session_context, describe_change
from ui_state.tasks import abandon_tasks, tool_task_change

__all__ = [
    "InvalidPatch",
    "StateDoc",
    "StateError",
    "StateTooLarge",
    "VersionConflict",
    "abandon_tasks",
    "apply_patch",
    "create_session_context",
    "describe_change",
    "encoded_size",
    "key_patch",
    "merge_patch",
    "tool_task_change",
]
