"""The hub: the node (lifecycle, the broker's handler), its services (directory, admission,
recovery, state, tool runner, commands), the local registry and per-connection outboxes."""

__all__ = [
    "admission",
    "commands",
    "connection",
    "directory",
    "eager",
    "hub",
    "locks",
    "node",
    "outbox",
    "publisher",
    "ratelimit",
    "recovery",
    "resume_plan",
    "seeder",
    "state",
    "toolrunner",
]
