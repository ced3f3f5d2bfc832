"""`labelmill tune`: search prompts and strategies on a dev set."""

from labelmill.strategies.tune.run import TuneOptions, tune

__all__ = ["TuneOptions", "tune"]
