"""weak's registration: the sub-labeler analysis table read from the vote columns of an output it wrote,
its report section, and the `labelmill weak` command."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from labelmill.strategies.base import EvalContext, Strategy
from labelmill.strategies.weak.combine import VOTE_PREFIX

TABLE_COLUMNS = ["name", "polarity", "coverage", "overlaps", "conflicts", "gold_rows", "empirical_accuracy"]


class WeakStrategy(Strategy):
    name = "weak"

    def evaluate(self, context: EvalContext) -> dict[str, Any]:
        from labelmill.numeric.weak import ABSTAIN, lf_summary

        votes = [c for c in context.frame.columns if str(c).startswith(VOTE_PREFIX)]
        names = list(context.task.labels)
        if not votes or not names:
            return {}
        index = {n: i for i, n in enumerate(names)}
        L = np.array([[index.get(str(v), ABSTAIN) for v in context.frame[c].fillna("")] for c in votes], dtype=int).T
        gold = np.array([index.get(str(g), ABSTAIN) for g in context.gold])
        rows = lf_summary(L, len(names), gold)
        return {"weak_sub_labelers": [{"name": c[len(VOTE_PREFIX):], **r} for c, r in zip(votes, rows)],
                "weak_coverage": float((L != ABSTAIN).any(axis=1).mean())}

    def report_section(self, metrics: dict[str, Any]) -> str | None:
        from labelmill.evaluation.report import html_table

        if not metrics.get("weak_sub_labelers"):
            return None
        rows = [{**r, "polarity": json.dumps(r["polarity"])} for r in metrics["weak_sub_labelers"]]
        return (f"<h2>Weak supervision: sub-labelers</h2><p>Rows with at least one vote: {metrics['weak_coverage']:.3f}. "
                "Empirical accuracy is measured on the rows with a gold label that the sub-labeler voted on.</p>" + html_table(rows, TABLE_COLUMNS))

    def command(self) -> Any:
        import click

        @click.command(name="weak")
        @click.argument("config", type=click.Path(dir_okay=False))
        @click.argument("input", type=click.Path(dir_okay=False))
        @click.option("--out", "output", required=True, type=click.Path(dir_okay=False), help="Labeled output with each sub-labeler's vote.")
        @click.option("--limit", type=click.IntRange(min=1), help="Only the first N rows.")
        @click.option("--project", default="labelmill.db", show_default=True)
        @click.option("--label-model", type=click.Choice(["dawid_skene", "majority_vote"]), help="Overrides weak.label_model.")
        @click.option("--end-model", is_flag=True, help="Also train a student on the label model's labels; it labels every row (weak_end_label).")
        @click.option("--json", "as_json", is_flag=True, help="Print the sub-labeler table as JSON.")
        def weak_command(config: str, input: str, output: str, limit: int | None, project: str, label_model: str | None, end_model: bool, as_json: bool) -> None:
            """Label INPUT by weak supervision: the config's sub-labelers vote, a label model combines them."""
            from labelmill.cli.progress import ProgressView
            from labelmill.strategies.weak.combine import weak

            result = weak(config, input, project=project, output=output, limit=limit, label_model=label_model, end_model=end_model,
                          on_event=ProgressView(quiet=as_json))
            if as_json:
                click.echo(json.dumps({"output": str(result.output_path), "sub_labelers": result.summary}, default=float))
                return
            click.echo(f"wrote {result.output_path}: {int((result.L != -1).any(axis=1).sum())} of {len(result.L)} rows have at least one vote")
            for row in result.summary:
                accuracy = "" if row.get("empirical_accuracy") is None else f"  accuracy {row['empirical_accuracy']:.3f} on {row['gold_rows']} gold rows"
                click.echo(f"  {row['name']:<20} coverage {row['coverage']:.3f}  overlaps {row['overlaps']:.3f}  conflicts {row['conflicts']:.3f}{accuracy}")

        return weak_command


STRATEGY = WeakStrategy()
