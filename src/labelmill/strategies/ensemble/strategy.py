"""ensemble's registration: no tables of its own (its runs are ordinary runs, `source = ensemble`)."""

from __future__ import annotations

from typing import Any

from labelmill.config import Config
from labelmill.core import RunResult
from labelmill.core.strategy import Strategy
from labelmill.store import Store


class EnsembleStrategy(Strategy):
    name = "ensemble"

    def label_rows(self, config: Config, data: Any, options: Any, *, store: Store, make_job: Any, on_event: Any, close_backends: bool) -> RunResult:
        """Each member labels the rows as a run of its own; the ensemble's run combines them."""
        from labelmill.strategies.ensemble.run import run_ensemble

        return run_ensemble(config, data, options, store=store, make_job=make_job, on_event=on_event, close_backends=close_backends)

    def plan_config(self, config: Config) -> Config:
        """The prompt preview is the first member's (the estimate counts every member)."""
        from labelmill.strategies.ensemble.run import member_configs

        return member_configs(config)[0]


STRATEGY = EnsembleStrategy()
