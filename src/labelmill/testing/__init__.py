"""Test helpers that ship with labelmill: a local OpenAI/Anthropic-compatible server with injectable faults."""
