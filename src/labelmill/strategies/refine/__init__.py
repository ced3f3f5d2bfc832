"""refine: written guidelines that improve from the model's own errors, versioned in the store and read
like a document; proposals wait for people in the review app."""

from labelmill.registry import lazy_exports

_PUBLIC = {  # name -> its module, imported on first use
    "RefineOptions": "run",
    "refine": "run",
    "RefineResult": "run",
    "GuidelineVersions": "versions",
    "Version": "versions",
    "Proposals": "proposals",
    "Proposal": "proposals",
}
__getattr__ = lazy_exports(__name__, _PUBLIC)
__all__ = sorted(_PUBLIC)
