"""weak's registration: the sub-labeler analysis table (from the vote columns of an output it wrote and its
`<output>.weak.json` sidecar: seed figures, thresholds, flags, learned accuracy), the coverage plot, its
report section, and the `labelmill weak` / `labelmill weak propose` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from labelmill.core.strategy import EvalContext, Strategy
from labelmill.strategies.weak.combine import VOTE_PREFIX, plain_json, weak_sidecar

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
        return weak_group()


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


def weak_group() -> Any:
    import click

    class DefaultToLabel(click.Group):
        """`labelmill weak CONFIG ROWS ...` labels; `labelmill weak propose ...` drafts sub-labelers."""

        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
                args = ["label", *args]
            return super().parse_args(ctx, args)

    @click.group(name="weak", cls=DefaultToLabel, invoke_without_command=False)
    def group() -> None:
        """Weak supervision: `labelmill weak CONFIG ROWS --out OUT` labels ROWS with the config's sub-labelers;
        `labelmill weak propose CONFIG ROWS` drafts sub-labelers for a person to edit."""

    @group.command(name="label")
    @click.argument("config", type=click.Path(dir_okay=False))
    @click.argument("input", type=click.Path(dir_okay=False))
    @click.option("--out", "output", required=True, type=click.Path(dir_okay=False), help="Labeled output with each sub-labeler's vote.")
    @click.option("--limit", type=click.IntRange(min=1), help="Only the first N rows.")
    @click.option("--project", default="labelmill.db", show_default=True)
    @click.option("--label-model", type=click.Choice(["dawid_skene", "majority_vote", "snorkel"]), help="Overrides weak.label_model.")
    @click.option("--seed", "seed", type=click.Path(dir_okay=False, exists=True), help="Labeled seed rows (overrides weak.seed): thresholds and the accuracy floor.")
    @click.option("--select", is_flag=True, default=None, help="Drop sub-labelers under the coverage or seed-accuracy floor.")
    @click.option("--end-model", is_flag=True, help="Also train a student on the label model's labels; it labels every row (weak_end_label).")
    @click.option("--json", "as_json", is_flag=True, help="Print the sub-labeler table as JSON.")
    def label(config: str, input: str, output: str, limit: int | None, project: str, label_model: str | None, seed: str | None,
              select: bool | None, end_model: bool, as_json: bool) -> None:
        """Label INPUT by weak supervision: the config's sub-labelers vote, a label model combines them."""
        from labelmill.core.strategy import progress_handler
        from labelmill.config import load_config
        from labelmill.strategies.weak.combine import weak

        cfg = load_config(config)
        result = weak(cfg, input, project=project, output=output, limit=limit, label_model=label_model, end_model=end_model,
                      seed=seed, select=select, on_event=progress_handler(quiet=as_json))
        how = label_model or cfg.weak.label_model
        if as_json:
            click.echo(json.dumps({"output": str(result.output_path), "label_model": how, "sub_labelers": result.summary}, default=plain_json))
            return
        covered = (result.L != -1).reshape(len(result.L), -1).any(axis=1)
        click.echo(f"wrote {result.output_path}: {int(covered.sum())} of {len(result.L)} rows have at least one vote (label model: {how})")
        for row in result.summary:
            accuracy = "" if row.get("empirical_accuracy") is None else f"  accuracy {row['empirical_accuracy']:.3f} on {row['gold_rows']} gold rows"
            seeded = "" if row.get("seed_accuracy") is None else f"  seed accuracy {row['seed_accuracy']:.3f}"
            flags = f"  FLAGGED: {'; '.join(row['flags'])}{'' if row['kept'] else ' (dropped)'}" if row.get("flags") else ""
            click.echo(f"  {row['name']:<20} coverage {row['coverage']:.3f}{accuracy}{seeded}{flags}")

    @group.command(name="propose")
    @click.argument("config", type=click.Path(dir_okay=False))
    @click.argument("input", type=click.Path(dir_okay=False))
    @click.option("--sample", default=8, show_default=True, type=click.IntRange(1, 50), help="Rows shown to the model.")
    @click.option("--keywords", default=12, show_default=True, type=click.IntRange(1, 50), help="Keywords asked for per label.")
    @click.option("--model", "model_name", help="The proposer model (default: the config's), e.g. qwen2.5-coder-1.5b.")
    @click.option("--project", default="labelmill.db", show_default=True)
    @click.option("--out", "output", type=click.Path(dir_okay=False), help="Write the draft here (default: print it).")
    def propose_command(config: str, input: str, sample: int, keywords: int, model_name: str | None, project: str, output: str | None) -> None:
        """Draft sub-labelers (a question and keywords per label) from the guidelines and a sample of INPUT.
        The draft is for a person to edit into the config; no config is changed."""
        from labelmill.core.strategy import progress_handler
        from labelmill.strategies.weak.propose import propose

        draft = propose(config, input, project=project, sample=sample, keywords=keywords, proposer={"name": model_name} if model_name else None,
                        on_event=progress_handler(quiet=output is None))
        if output:
            Path(output).write_text(draft.yaml(), encoding="utf-8")
            click.echo(f"wrote {output}: {len(draft.sub_labelers)} sub-labelers to review")
        else:
            click.echo(draft.yaml(), nl=False)

    return group


STRATEGY = WeakStrategy()
