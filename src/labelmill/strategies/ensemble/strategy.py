"""ensemble's registration: no tables of its own (its runs are ordinary runs, `source = ensemble`)."""

from __future__ import annotations

from labelmill.strategies.base import Strategy


class EnsembleStrategy(Strategy):
    name = "ensemble"


STRATEGY = EnsembleStrategy()
