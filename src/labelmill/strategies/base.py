"""The strategy seam, kept importable here for plugins written against it: it lives in `labelmill.core.strategy`."""

from labelmill.core.strategy import EvalContext, Strategy, all_strategies, get_strategy, strategies

__all__ = ["EvalContext", "Strategy", "all_strategies", "get_strategy", "strategies"]
