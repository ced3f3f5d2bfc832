"""tune's registration: its own table of the strategies it tried."""

from __future__ import annotations

from typing import Any

from labelmill.core.strategy import Strategy


class TuneStrategy(Strategy):
    name = "tune"
    migrations = (
        # 1: the strategies `labelmill tune` tried, one JSON trial per row
        """
        CREATE TABLE IF NOT EXISTS tune_trials (
            id INTEGER PRIMARY KEY,
            created_at REAL NOT NULL,
            task_name TEXT NOT NULL,
            trial TEXT NOT NULL
        );
        """,
    )


    def command(self) -> Any:
        return "labelmill.strategies.tune.cli:tune"


STRATEGY = TuneStrategy()
