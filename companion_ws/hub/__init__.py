"""The hub: the node (orchestrator), the local connection registry and per-connection outboxes."""
