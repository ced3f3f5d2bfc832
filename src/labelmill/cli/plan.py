"""`labelmill plan CONFIG INPUT`: the prompt, tokens, time and cost, labeling nothing."""

from __future__ import annotations

import json

import click

from labelmill import api
from labelmill.cli.app import cli, command_config, cost_text
from labelmill.cli.progress import ProgressView


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("input", type=click.Path(dir_okay=False))
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N rows.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--model", help="Another model for this config, unedited: a catalog name, a .gguf path, or BACKEND:NAME (e.g. openai:gpt-4o-mini).")
@click.option("--encoding", help="Input text encoding (overrides dataset.encoding).")
def plan(config: str, input: str, limit: int | None, as_json: bool, model: str | None, encoding: str | None) -> None:
    """Preview the prompt and estimate tokens, time and cost, labeling nothing."""
    view = ProgressView(quiet=as_json)
    cfg = command_config(config, view, encoding=encoding, model=model)
    result = api.plan(cfg, input, limit=limit, on_event=view)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    from rich.console import Console
    from rich.panel import Panel

    console = Console()
    console.print(Panel(result["prompt_preview"], title="prompt for row 1 (as the model sees it)", expand=False))
    console.print(
        f"rows: {result['rows']}   method: {result['method']}   model: {result['model']} ({result['backend']})   demos: {result['demos']}\n"
        f"tokens: shared prefix {result['prefix_tokens']} (evaluated once), row text {result['mean_row_tokens']:.1f} on average, "
        f"template suffix {result['suffix_tokens']} per row\n"
        f"tokens evaluated with prefix reuse: {result['tokens_evaluated_with_prefix_reuse']:,} (vs {result['prompt_tokens_total']:,} sent without)\n"
        f"requests per row: {', '.join(f'{k} {v}' for k, v in result['requests_per_row'].items() if v)}\n"
        f"estimated time: {result['estimated_seconds']:.0f} s (loading the model: {result['setup_seconds']:.0f} s of it)   estimated cost: "
        + cost_text(result["estimated_cost_usd"])
    )
