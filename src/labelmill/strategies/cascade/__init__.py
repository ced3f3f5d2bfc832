"""The cascade: `labelmill run --tiers` (each tier labels what the tier below was unsure of, thresholds set on
labeled seed rows) and its preset for no labeled rows, `labelmill run --cascade` (the LLM's labels on a sample
are the seed: a student labels the easy rows, the LLM the rows it is unsure of)."""

from labelmill.strategies.cascade.run import TieredOptions, llm_cascade, tiered_cascade

__all__ = ["TieredOptions", "llm_cascade", "tiered_cascade"]
