"""`labelmill run --cascade`: a student labels the easy rows, the LLM the rows it is unsure of."""

from labelmill.strategies.cascade.tiers import cascade

__all__ = ["cascade"]
