"""The project store: one SQLite file (cache, runs, annotations with provenance) and its typed read-back."""

from labelmill.store.db import MIGRATIONS, Annotation, Store
from labelmill.store.tables import ABSTAIN, LabelTable, StoredLabel, label_matrix, label_table

__all__ = ["ABSTAIN", "MIGRATIONS", "Annotation", "LabelTable", "Store", "StoredLabel", "label_matrix", "label_table"]
