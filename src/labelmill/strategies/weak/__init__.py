"""`labelmill weak`: sub-labelers (prompted questions, rules, the main labeler) combined by a label model."""

from labelmill.strategies.weak.run import WeakOptions, WeakResult, weak

__all__ = ["WeakOptions", "WeakResult", "weak"]
