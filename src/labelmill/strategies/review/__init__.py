"""review: people on the hard rows. A queue ranked by what a review is worth, a local web app, several
annotators with agreement figures, the review -> refit -> relabel loop, and exports."""

from labelmill.registry import lazy_exports

_PUBLIC = {  # name -> its module, imported on first use
    "ReviewOptions": "run",
    "ReviewSession": "run",
    "RowView": "run",
    "Budget": "run",
    "create_app": "app",
    "gold_pool": "run",
    "Pool": "run",
}
__getattr__ = lazy_exports(__name__, _PUBLIC)
__all__ = sorted(_PUBLIC)
