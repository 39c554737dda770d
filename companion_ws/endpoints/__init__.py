"""HTTP and WebSocket endpoints: thin adapters over the node."""
