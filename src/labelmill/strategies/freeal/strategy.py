"""FreeAL's registration: its tables (each loop and its rounds), the student's accuracy and the rounds
(from the `<output>.freeal.json` sidecar) in eval, and its report section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from labelmill.core.strategy import EvalContext, Strategy

STUDENT_COLUMN = "student_label"
ROUND_COLUMNS = ["round", "relabeled", "changed", "clean_share", "pool_size", "agreement", "accuracy", "student_accuracy", "clean_accuracy", "seconds"]


def freeal_sidecar(output: str | Path) -> Path:
    """Where `labelmill freeal` writes its rounds next to the output (read by eval for the report)."""
    path = Path(output)
    return path.with_name(path.stem + ".freeal.json")


class FreealStrategy(Strategy):
    name = "freeal"
    migrations = (
        # 1: FreeAL loops: each round's run (its annotations are the labels it gave) and figures
        """
        CREATE TABLE IF NOT EXISTS freeal_runs (
            id INTEGER PRIMARY KEY,
            created_at REAL NOT NULL,
            task_name TEXT NOT NULL,
            config_hash TEXT NOT NULL,
            input_hash TEXT NOT NULL,
            rounds INTEGER NOT NULL,
            label_issues TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS freeal_rounds (
            freeal_id INTEGER NOT NULL REFERENCES freeal_runs(id),
            round INTEGER NOT NULL,
            stats TEXT NOT NULL,
            PRIMARY KEY (freeal_id, round)
        );
        """,
    )

    def evaluate(self, context: EvalContext) -> dict[str, Any]:
        found: dict[str, Any] = {}
        task = context.task
        if STUDENT_COLUMN in context.frame.columns:
            found["student_accuracy"] = float(np.mean([task.is_correct(g, task.parse_output(v)) for g, v in zip(context.gold, context.frame[STUDENT_COLUMN])]))
        if context.output is not None and freeal_sidecar(context.output).exists():
            found["freeal_rounds"] = json.loads(freeal_sidecar(context.output).read_text(encoding="utf-8"))["rounds"]
        return found

    def report_section(self, metrics: dict[str, Any]) -> str | None:
        from labelmill.evaluation.report import html_table

        parts = []
        if metrics.get("student_accuracy") is not None:
            parts.append(f"<p>The student's own labels (<code>{STUDENT_COLUMN}</code>): accuracy {metrics['student_accuracy']:.3f}.</p>")
        if metrics.get("freeal_rounds"):
            parts.append("<p>No gold label was used by the loop; accuracy is computed here for the report only.</p>")
            parts.append(html_table(metrics["freeal_rounds"], ROUND_COLUMNS))
        return "<h2>FreeAL rounds</h2>" + "".join(parts) if parts else None

    def command(self) -> Any:
        return "labelmill.strategies.freeal.cli:freeal"


STRATEGY = FreealStrategy()
