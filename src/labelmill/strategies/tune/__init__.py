"""`labelmill tune`: search prompts and strategies on a dev set."""

from labelmill.strategies.tune.run import tune

__all__ = ["tune"]
