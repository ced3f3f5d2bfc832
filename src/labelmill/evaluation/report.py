"""The HTML evaluation report: metrics, threshold table and curve, reliability diagram, confusion matrix."""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any


def figure_png(fig) -> str:
    """A matplotlib figure as a data: URL for an <img> in the report (strategies' sections use it too)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _threshold_plot(metrics: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    table = [r for r in metrics["threshold_table"] if not math.isnan(r["accuracy"])]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.plot([r["share"] for r in table], [r["accuracy"] for r in table], marker="o")
    for r in table:
        ax.annotate(f"{r['threshold']:.2f}", (r["share"], r["accuracy"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.axhline(metrics["target"], color="grey", linestyle="--", linewidth=1, label=f"target {metrics['target']:.2f}")
    ax.set_xlabel("share of rows labeled automatically (confidence >= threshold)")
    ax.set_ylabel("accuracy of those rows")
    ax.set_xlim(0, 1.02)
    ax.legend(loc="lower left")
    ax.set_title("Threshold curve")
    return figure_png(fig)


def _reliability_plot(metrics: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    bins = metrics["reliability"]
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    ax.bar([(b["low"] + b["high"]) / 2 for b in bins], [b["accuracy"] for b in bins], width=0.09, alpha=0.7, label="accuracy")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", color="C1", label="bin: mean confidence vs accuracy")
    before = metrics.get("reliability_before_calibration")
    if before:  # a calibrated output: the model's own confidence too
        ax.plot([b["confidence"] for b in before], [b["accuracy"] for b in before], marker="x", linestyle=":", color="C3",
                label=f"before calibration (ECE {metrics['ece_before_calibration']:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability (ECE {metrics['ece']:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    return figure_png(fig)


def _confusion_plot(metrics: dict[str, Any]) -> str | None:
    cm = metrics.get("confusion_matrix")
    if not cm or len(cm["labels"]) > 30:
        return None
    import matplotlib.pyplot as plt
    import numpy as np

    matrix = np.array(cm["rows"])
    size = max(3.5, 0.45 * len(cm["columns"]) + 1.5)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(cm["columns"])), cm["columns"], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(cm["labels"])), cm["labels"], fontsize=8)
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=8, color="white" if value > matrix.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("Confusion matrix")
    return figure_png(fig)


def html_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}"
    return html.escape(str(value)) if value is not None else "–"


def write_report(metrics: dict[str, Any], path: str | Path, *, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from labelmill.evaluation.metrics import HEADLINE_METRICS

    summary_keys = ["n_rows", *HEADLINE_METRICS, "accuracy_on_completed", "threshold_for_target", "auto_share_at_target", "auto_accuracy_at_target",
                    "ece", "ece_before_calibration", "accuracy_before_calibration"]
    summary = []
    for key in dict.fromkeys(summary_keys):
        value = metrics.get(key)
        if isinstance(value, dict):
            summary += [{"metric": f"{key} ({k})", "value": v} for k, v in value.items()]
        elif value is not None:
            summary.append({"metric": key, "value": value})
    groups = metrics.get("per_class") or metrics.get("per_type") or metrics.get("per_attribute") or metrics.get("per_relation") or {}
    per_class = [{"label": k, **v} for k, v in groups.items()]
    images = [_threshold_plot(metrics), _reliability_plot(metrics), _confusion_plot(metrics)]
    failures = [{"kind": k, "rows": v} for k, v in metrics.get("failures", {}).items()]
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Accuracy counts rows without a label as wrong; completion rate {metrics['completion_rate']:.3f} is shown beside it.</p>",
        "<h2>Summary</h2>", html_table(summary, ["metric", "value"]),
        f"<h2>Threshold table (target {metrics['target']:.2f})</h2>", html_table(metrics["threshold_table"], ["threshold", "share", "rows", "accuracy"]),
        "<h2>Plots</h2>", "".join(f'<img src="{img}" alt="plot">' for img in images if img),
        "<h2>Per class</h2>", html_table(per_class, ["label", "precision", "recall", "f1", "support"] if not metrics.get("per_attribute") else ["label", "accuracy", "accuracy_on_completed"]),
    ]
    if metrics.get("official_per_type"):  # SemEval-2010 Task 8's official score: per relation type, directions merged
        official = [{"label": k, **v} for k, v in metrics["official_per_type"].items()]
        parts += [f"<h2>Official score per relation type (macro-F1 {metrics['official_macro_f1']:.3f})</h2>", html_table(official, ["label", "precision", "recall", "f1", "support"])]
    if metrics.get("relation_thresholds"):  # relations end to end: each relation's own confidence
        parts += ["<h2>Relations kept by their confidence</h2>", html_table(metrics["relation_thresholds"], ["threshold", "relations_kept", "precision", "recall", "f1"])]
    if failures:
        parts += ["<h2>Rows without a label</h2>", html_table(failures, ["kind", "rows"])]
    for section in _strategy_sections(metrics):
        parts.append(section)
    style = "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{margin:6px;vertical-align:top}"
    document = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    return path


def _strategy_sections(metrics: dict[str, Any]) -> list[str]:
    """Each strategy's own report section (cascade sources, FreeAL rounds, ...), in registry order."""
    from labelmill.core.strategy import all_strategies

    return [section for strategy in all_strategies() if (section := strategy.report_section(metrics))]
