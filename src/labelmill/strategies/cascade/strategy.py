"""cascade's registration: accuracy by label source (student, LLM or tier) read from `llm_label_source`,
the tiers' rows, thresholds and time from the `<out>.cascade.json` sidecar, and its report section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from labelmill.core.strategy import EvalContext, Strategy

SOURCE_COLUMN = "llm_label_source"
TIER_FIELDS = ["name", "rows", "share", "accuracy", "threshold", "seed_rows", "seed_accuracy_accepted", "capped", "seconds", "note"]


class CascadeStrategy(Strategy):
    name = "cascade"

    def evaluate(self, context: EvalContext) -> dict[str, Any]:
        if SOURCE_COLUMN not in context.frame.columns:
            return {}
        sources = context.frame[SOURCE_COLUMN].fillna("").astype(str).tolist()
        out: dict[str, Any] = {"by_source": {
            src: {"rows": int(sum(x == src for x in sources)), "accuracy": float(np.mean([c for c, x in zip(context.correct, sources) if x == src]))}
            for src in sorted(set(sources)) if src
        }}
        sidecar = Path(str(context.output) + ".cascade.json") if context.output else None
        if sidecar is not None and sidecar.is_file():
            try:
                saved = json.loads(sidecar.read_text())
            except ValueError:
                saved = {}
            tiers = saved.get("tiers") or []
            for tier in tiers:  # accuracy from this evaluation's gold
                got = out["by_source"].get(tier.get("name"))
                tier["accuracy"] = got["accuracy"] if got else None
            if tiers:
                out["cascade_tiers"] = tiers
                out["cascade_target"] = saved.get("target")
                out["cascade_wall_s"] = saved.get("wall_s")
        return out

    def report_section(self, metrics: dict[str, Any]) -> str | None:
        from labelmill.evaluation.report import html_table

        if not metrics.get("by_source"):
            return None
        html = ""
        if metrics.get("cascade_tiers"):
            html += (f"<h2>Cascade tiers</h2><p>Thresholds set on seed rows for a target accuracy of {metrics.get('cascade_target')}; "
                     f"{metrics.get('cascade_wall_s')} s in all.</p>" + html_table(metrics["cascade_tiers"], TIER_FIELDS))
        rows = [{"source": k, **v} for k, v in metrics["by_source"].items()]
        return html + "<h2>By label source (cascade)</h2>" + html_table(rows, ["source", "rows", "accuracy"])


STRATEGY = CascadeStrategy()
