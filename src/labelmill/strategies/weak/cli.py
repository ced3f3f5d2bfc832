"""`labelmill weak`: label with sub-labelers combined by a label model, and `labelmill weak propose`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from labelmill.strategies.weak.run import plain_json


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
@click.option("--project", default="labelmill.db", show_default=True, help='SQLite project file (cache, runs, labels).')
@click.option("--label-model", type=click.Choice(["dawid_skene", "majority_vote", "snorkel"]), help="Overrides weak.label_model.")
@click.option("--seed", "seed", type=click.Path(dir_okay=False, exists=True), help="Labeled seed rows (overrides weak.seed): thresholds and the accuracy floor.")
@click.option("--select", is_flag=True, default=None, help="Drop sub-labelers under the coverage or seed-accuracy floor.")
@click.option("--end-model", is_flag=True, help="Also train a student on the label model's labels; it labels every row (weak_end_label).")
@click.option("--json", "as_json", is_flag=True, help="Print the sub-labeler table as JSON.")
def label(config: str, input: str, output: str, limit: int | None, project: str, label_model: str | None, seed: str | None,
          select: bool | None, end_model: bool, as_json: bool) -> None:
    """Label INPUT by weak supervision: the config's sub-labelers vote, a label model combines them."""
    from labelmill.config import load_with_notices
    from labelmill.core.strategy import progress_handler
    from labelmill.strategies.weak.run import weak

    on_event = progress_handler(quiet=as_json)
    cfg = load_with_notices(config, on_event)
    result = weak(cfg, input, project=project, output=output, limit=limit, label_model=label_model, end_model=end_model,
                  seed=seed, select=select, on_event=on_event)
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
@click.option("--project", default="labelmill.db", show_default=True, help='SQLite project file (cache, runs, labels).')
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



weak_command = group
