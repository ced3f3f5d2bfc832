"""`labelmill weak`: sub-labelers (prompted questions, rules, the main labeler) combined by a label model."""

from labelmill.registry import lazy_exports

_PUBLIC = {  # name -> its module, imported on first use (the config reads `section` without the rest)
    "WeakOptions": "run",
    "WeakResult": "run",
    "weak": "run",
    "WeakSpec": "section",
    "SubLabelerSpec": "section",
}
__getattr__ = lazy_exports(__name__, _PUBLIC)
__all__ = sorted(_PUBLIC)
