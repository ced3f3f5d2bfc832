"""Few-shot demo selection: which labeled examples each row's prompt shows."""

from labelmill.selectors.pickers import DemoPicker

__all__ = ["DemoPicker"]
