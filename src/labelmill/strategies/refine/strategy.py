"""refine's registration: its tables (guideline versions and heads) and the `labelmill guidelines`
command group (log, show, diff, checkout, commit), which work like their git namesakes."""

from __future__ import annotations

from typing import Any

from labelmill.strategies.base import Strategy


class RefineStrategy(Strategy):
    name = "refine"

    @property
    def migrations(self):
        from labelmill.strategies.refine.versions import MIGRATIONS

        return MIGRATIONS

    def command(self) -> Any:
        from labelmill.strategies.refine.cli import guidelines_group, refine_command

        return [guidelines_group, refine_command]


STRATEGY = RefineStrategy()
