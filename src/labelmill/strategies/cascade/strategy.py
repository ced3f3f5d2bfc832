"""cascade's registration: accuracy by label source (student or LLM) read from `llm_label_source`, and its report section."""

from __future__ import annotations

from typing import Any

import numpy as np

from labelmill.strategies.base import EvalContext, Strategy

SOURCE_COLUMN = "llm_label_source"


class CascadeStrategy(Strategy):
    name = "cascade"

    def evaluate(self, context: EvalContext) -> dict[str, Any]:
        if SOURCE_COLUMN not in context.frame.columns:
            return {}
        sources = context.frame[SOURCE_COLUMN].fillna("").astype(str).tolist()
        return {"by_source": {
            src: {"rows": int(sum(x == src for x in sources)), "accuracy": float(np.mean([c for c, x in zip(context.correct, sources) if x == src]))}
            for src in sorted(set(sources)) if src
        }}

    def report_section(self, metrics: dict[str, Any]) -> str | None:
        from labelmill.evaluation.report import html_table

        if not metrics.get("by_source"):
            return None
        rows = [{"source": k, **v} for k, v in metrics["by_source"].items()]
        return "<h2>By label source (cascade)</h2>" + html_table(rows, ["source", "rows", "accuracy"])


STRATEGY = CascadeStrategy()
