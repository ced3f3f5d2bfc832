"""Few-shot demo selection: which labeled examples each row's prompt shows.

Selectors register by name (`selectors.register(name, Selector(per_row, pick))`, or the
`labelmill.selectors` entry point group); the config's `examples.selection` names one.
"""

from labelmill.selectors.pickers import DemoPicker, Selector, get_selector, selectors

__all__ = ["DemoPicker", "Selector", "get_selector", "selectors"]
