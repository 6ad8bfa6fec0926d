"""The data layer: struct.json on disk, atomic writes, and the task database."""
