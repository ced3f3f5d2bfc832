"""Ensembles over prompts and models: each member its own run, combined per row."""

from labelmill.registry import lazy_exports

_PUBLIC = {  # name -> its module, imported on first use (the config reads `section` without the rest)
    "combine": "run",
    "member_configs": "run",
    "run_ensemble": "run",
    "EnsembleSpec": "section",
}
__getattr__ = lazy_exports(__name__, _PUBLIC)
__all__ = sorted(_PUBLIC)
