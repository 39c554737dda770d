"""The wire protocol: client messages, server frames, the codec and close codes. Pure."""
