"""`labelmill freeal`: the LLM labels, a student picks clean labels, their medoids become demos, relabel."""

from labelmill.strategies.freeal.run import FreealOptions, freeal

__all__ = ["FreealOptions", "freeal"]
