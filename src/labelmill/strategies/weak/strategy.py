"""weak's registration: the sub-labeler analysis table (from the vote columns of an output it wrote and its
`<output>.weak.json` sidecar: seed figures, thresholds, flags, learned accuracy), the coverage plot, its
report section, and the `labelmill weak` / `labelmill weak propose` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from labelmill.core.strategy import EvalContext, Strategy
from labelmill.strategies.weak.run import VOTE_PREFIX, plain_json, weak_sidecar

TABLE_COLUMNS = ["name", "kind", "polarity", "coverage", "overlaps", "conflicts", "gold_rows", "empirical_accuracy",
                 "seed_accuracy", "learned_accuracy", "kept", "flags"]
SIDECAR_KEYS = ("kind", "seed_rows", "seed_coverage", "seed_accuracy", "learned_accuracy", "thresholds", "flags", "kept")


class WeakStrategy(Strategy):
    name = "weak"

    def evaluate(self, context: EvalContext) -> dict[str, Any]:
        from labelmill.numeric.weak import ABSTAIN, lf_summary

        votes = [c for c in context.frame.columns if str(c).startswith(VOTE_PREFIX)]
        names = list(context.task.labels)
        if not votes or not names:
            return {}
        if context.task.config.task == "multilabel":
            rows = self._multilabel_rows(context, votes, names)
            covered = np.array([any(str(v).strip() for v in row if isinstance(v, str)) for row in context.frame[votes].itertuples(index=False)])
        else:
            index = {n: i for i, n in enumerate(names)}
            L = np.array([[index.get(str(v), ABSTAIN) for v in context.frame[c].fillna("")] for c in votes], dtype=int).T
            gold = np.array([index.get(str(g), ABSTAIN) for g in context.gold])
            rows = lf_summary(L, len(names), gold)
            covered = (L != ABSTAIN).any(axis=1)
        table = [{"name": c[len(VOTE_PREFIX):], **r} for c, r in zip(votes, rows)]
        found: dict[str, Any] = {"weak_sub_labelers": table, "weak_coverage": float(covered.mean())}
        if context.output is not None and weak_sidecar(context.output).exists():
            side = json.loads(weak_sidecar(context.output).read_text(encoding="utf-8"))
            by_name = {r["name"]: r for r in side.get("sub_labelers", [])}
            for row in table:
                row.update({k: by_name[row["name"]][k] for k in SIDECAR_KEYS if k in by_name.get(row["name"], {})})
            found["weak_label_model"] = side.get("label_model")
        return found

    @staticmethod
    def _multilabel_rows(context: EvalContext, votes: list[str], names: list[str]) -> list[dict[str, Any]]:
        separator = context.task.config.label_separator
        out = []
        for column in votes:
            cells = [[p for p in str(v).split(separator) if p] if isinstance(v, str) else [] for v in context.frame[column]]
            voted = [bool(c) for c in cells]
            right = sum(sum(p in (g or []) for p in c) for c, g in zip(cells, context.gold))
            total = sum(len(c) for c in cells)
            out.append({"polarity": sorted({names.index(p) for c in cells for p in c if p in names}), "coverage": float(np.mean(voted)) if voted else 0.0,
                        "gold_rows": int(sum(voted)), "empirical_accuracy": (right / total) if total else None})
        return out

    def report_section(self, metrics: dict[str, Any]) -> str | None:
        from labelmill.evaluation.report import html_table

        if not metrics.get("weak_sub_labelers"):
            return None
        rows = [{**r, "polarity": json.dumps(r.get("polarity")), "flags": "; ".join(r.get("flags") or [])} for r in metrics["weak_sub_labelers"]]
        model = f" Label model: {metrics['weak_label_model']}." if metrics.get("weak_label_model") else ""
        return (f"<h2>Weak supervision: sub-labelers</h2><p>Rows with at least one vote: {metrics['weak_coverage']:.3f}.{model} "
                "Empirical accuracy is measured on the rows with a gold label that the sub-labeler voted on; seed accuracy on the "
                "seed rows; learned accuracy is the label model's own estimate (the weight it gives the sub-labeler).</p>"
                + html_table(rows, [c for c in TABLE_COLUMNS if any(c in r for r in rows)])
                + f"<img alt='coverage and accuracy per sub-labeler' src='{coverage_plot(metrics['weak_sub_labelers'])}'>")

    def command(self) -> Any:
        return "labelmill.strategies.weak.cli:weak_command"


def coverage_plot(table: list[dict[str, Any]]) -> str:
    """Coverage (and accuracy where known) per sub-labeler, as a bar chart for the report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from labelmill.evaluation.report import figure_png

    names = [r["name"] for r in table]
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(names) + 1.2))
    ax.barh(y - 0.2, [r["coverage"] for r in table], height=0.4, label="coverage")
    accuracy = [r.get("empirical_accuracy") if r.get("empirical_accuracy") is not None else r.get("seed_accuracy") for r in table]
    if any(a is not None for a in accuracy):
        ax.barh(y + 0.2, [a or 0.0 for a in accuracy], height=0.4, label="accuracy (gold, else seed)")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.legend(loc="lower right", fontsize=7)
    ax.set_title("Sub-labelers")
    return figure_png(fig)


STRATEGY = WeakStrategy()
