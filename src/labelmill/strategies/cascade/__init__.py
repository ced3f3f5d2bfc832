"""Cascades: `labelmill run --tiers` (each tier labels what the tier below was unsure of, thresholds set on
labeled seed rows) and `labelmill run --cascade` (a student labels the easy rows, the LLM the rows it is unsure of)."""

from labelmill.strategies.cascade.run import TieredOptions, tiered_cascade
from labelmill.strategies.cascade.tiers import cascade

__all__ = ["TieredOptions", "cascade", "tiered_cascade"]
