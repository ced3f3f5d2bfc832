"""The project store: one SQLite file (cache, runs, annotations with provenance) and its typed read-back."""

from labelmill.store.db import MIGRATIONS, Annotation, Store

__all__ = ["MIGRATIONS", "Annotation", "Store"]
