"""Execution engines: the same job labeled in this process (`core.loop`) or sharded over Ray (`ray`)."""
