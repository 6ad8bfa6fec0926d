"""The data layer: struct.json on disk (and later the task database)."""
