"""The core engine: discovery, parsing, scanning and (later) context assembly."""
