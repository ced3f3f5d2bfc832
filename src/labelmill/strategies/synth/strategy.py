"""synth's registration: the `labelmill synth` command group (examples per label so far)."""

from __future__ import annotations

import json
from typing import Any

from labelmill.strategies.base import Strategy


class SynthStrategy(Strategy):
    name = "synth"

    def command(self) -> Any:
        import click

        @click.group(name="synth")
        def group() -> None:
            """Synthesize data with the model: `labelmill synth examples CONFIG --out OUT` writes labeled examples per label."""

        @group.command(name="examples")
        @click.argument("config", type=click.Path(dir_okay=False))
        @click.option("--out", "output", required=True, type=click.Path(dir_okay=False), help="The examples, with why each removed one was removed.")
        @click.option("--per-label", default=50, show_default=True, type=click.IntRange(1, 100000))
        @click.option("--model", "model_name", help="The writer model (default: the config's), e.g. qwen2.5-coder-1.5b.")
        @click.option("--temperature", default=0.9, show_default=True, type=click.FloatRange(0, 2))
        @click.option("--no-consistency", is_flag=True, help="Keep examples the config's labeler labels otherwise.")
        @click.option("--no-dedup", is_flag=True, help="Keep near-duplicates.")
        @click.option("--project", default="labelmill.db", show_default=True)
        @click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
        def examples(config: str, output: str, per_label: int, model_name: str | None, temperature: float, no_consistency: bool,
                     no_dedup: bool, project: str, as_json: bool) -> None:
            """Write labeled examples for each label of a classification CONFIG, from no real rows: subtopics,
            lengths and styles vary; rule, near-duplicate and consistency filters drop the bad ones."""
            from labelmill.cli.progress import ProgressView
            from labelmill.strategies.synth.examples import synth_examples

            result = synth_examples(config, per_label=per_label, project=project, output=output, generator={"name": model_name} if model_name else None,
                                    temperature=temperature, consistency=not no_consistency, dedup=not no_dedup, on_event=ProgressView(quiet=as_json))
            if as_json:
                click.echo(json.dumps({"output": str(result.output_path), **result.figures}))
                return
            f = result.figures
            click.echo(f"wrote {result.output_path}: kept {f['kept']} of {f['generated']} examples {f['kept_per_label']}; "
                       f"distinct-2 {f['distinct_2']:.3f}, near-duplicates removed {f['dedup_removed_share']:.1%}")

        return group


STRATEGY = SynthStrategy()
