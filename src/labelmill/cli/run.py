"""`labelmill run CONFIG INPUT --out OUT`: label (resumable), locally, on Ray, or as a cascade."""

from __future__ import annotations

import json

import click

from labelmill import api
from labelmill.cli.app import cli, command_config
from labelmill.cli.progress import ProgressView


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("input", type=click.Path(dir_okay=False))
@click.option("--out", "output", required=True, type=click.Path(dir_okay=False), help="Labeled output (.csv, .jsonl, .parquet, .xlsx).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N rows.")
@click.option("--project", default=api.DEFAULT_PROJECT, show_default=True, help="SQLite project file (cache, annotations, runs).")
@click.option("--encoding", help="Input text encoding (overrides dataset.encoding).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--max-cost", type=click.FloatRange(min=0), help="Stop cleanly once this many USD are spent (paid models); labels so far are saved.")
@click.option(
    "--ray", "ray_address", is_flag=False, flag_value="local", default=None,
    help="Shard rows over Ray workers, each with its own backend: --ray (a local Ray) or --ray ADDRESS (a cluster).",
)
@click.option("--ray-workers", type=click.IntRange(min=1), default=2, show_default=True, help="With --ray: how many workers.")
@click.option("--model", "model_name", help="Another model for this config, unedited: a catalog name, a .gguf path, or BACKEND:NAME (e.g. openai:gpt-4o-mini).")
@click.option("--calibration", type=click.Path(dir_okay=False, exists=True), help="A file from `labelmill calibrate`: write calibrated labels and confidences, and llm_needs_review.")
@click.option("--cascade", is_flag=True, help="The tiered cascade's preset for no labeled rows: the LLM labels a sample, a student trained on it the rest; rows the student is unsure of go to the LLM.")
@click.option("--cascade-sample", type=click.IntRange(min=20), default=200, show_default=True, help="With --cascade: rows the LLM labels first.")
@click.option("--cascade-llm-share", type=click.FloatRange(min=0, max=1, min_open=True), default=0.2, show_default=True, help="With --cascade: the most rows the LLM labels, as a share of all rows.")
@click.option("--cascade-target", type=click.FloatRange(min=0, max=1), default=0.9, show_default=True, help="With --cascade: the student keeps a row when it agrees with the LLM at least this often (a 95% bound on the sample).")
@click.option("--strong-model", help="With --cascade: a stronger model (e.g. qwen2.5-coder-1.5b) for rows the LLM is unsure of.")
@click.option("--tiers", help="A tiered cascade, cheapest first: e.g. student:all-mpnet-base-v2,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b "
              "(a model name, a .gguf path, backend:name, or a .json/.yaml model mapping; NAME@0.2 caps a tier at 20% of the rows).")
@click.option("--tiers-seed", type=click.Path(dir_okay=False, exists=True), help="With --tiers: labeled seed rows (train/dev or reviewed) for the student and the thresholds.")
@click.option("--tiers-target", type=click.FloatRange(min=0, max=1), default=0.95, show_default=True, help="With --tiers: the accuracy each tier must reach (with a 95% bound on the seed rows) to keep a row.")
@click.option("--tiers-calibration-rows", type=click.IntRange(min=20), default=200, show_default=True, help="With --tiers: seed rows each middle model labels to set its threshold.")
@click.option("--tiers-compare-next", is_flag=True, help="With --tiers: a tier passes rows up only if the next model is more accurate on a sample of the seed rows it would get.")
def run(
    config: str, input: str, output: str, limit: int | None, project: str, encoding: str | None, as_json: bool, quiet: bool,
    max_cost: float | None, ray_address: str | None, ray_workers: int, model_name: str | None, calibration: str | None,
    cascade: bool, cascade_sample: int, cascade_llm_share: float, cascade_target: float, strong_model: str | None,
    tiers: str | None, tiers_seed: str | None, tiers_target: float, tiers_calibration_rows: int, tiers_compare_next: bool,
) -> None:
    """Label INPUT and write OUTPUT. Rerunning the same command resumes where it stopped."""
    view = ProgressView(quiet=quiet or as_json)
    cfg = command_config(config, view, encoding=encoding, model=model_name)
    if tiers or cascade:
        from labelmill.errors import ConfigError
        from labelmill.strategies.cascade.run import llm_cascade, tiered_cascade

        if tiers and cascade:
            raise ConfigError("--cascade and --tiers are two cascades; give one", fix="--cascade is the preset student,LLM[,--strong-model] with no labeled rows")
        if tiers and not tiers_seed:
            raise ConfigError("--tiers needs labeled seed rows to set each tier's threshold", fix="add --tiers-seed train.csv (a train/dev file or reviewed rows), or use --cascade")
        if tiers:
            done = tiered_cascade(cfg, input, tiers=tiers, seed=tiers_seed, target=tiers_target, calibration_rows=tiers_calibration_rows,
                                  compare_next=tiers_compare_next, project=project, output=output, limit=limit, on_event=view)
        else:
            done = llm_cascade(cfg, input, sample=cascade_sample, llm_share=cascade_llm_share, target=cascade_target, strong=strong_model,
                               project=project, output=output, limit=limit, on_event=view)
        if as_json:
            click.echo(json.dumps({"output": str(done.output_path), **done.figures}, default=float))
        else:
            for t in done.tiers:
                acc = f", accuracy {t.accuracy:.3f}" if t.accuracy is not None else ""
                click.echo(f"tier {t.name}: {t.rows} rows ({t.share:.1%}), threshold {t.threshold}{acc}, {t.seconds:.1f} s" + (" (capped)" if t.capped else ""))
            click.echo(f"wrote {done.output_path}; {done.figures['wall_s']:.1f} s; next: labelmill eval {config} {output}")
        return
    if ray_address is not None:
        from labelmill.execute.ray import label_on_ray

        result = label_on_ray(
            cfg, input, output=output, limit=limit, project=project, address=None if ray_address == "local" else ray_address,
            workers=ray_workers, on_event=view, max_cost=max_cost,
        )
    else:
        result = api.label(cfg, input, output=output, limit=limit, project=project, on_event=view, max_cost=max_cost, calibration=calibration)
    if as_json:
        click.echo(json.dumps({
            "run_id": result.run_id, "output": str(result.output_path), "rows": result.total, "labeled": result.labeled,
            "failed": result.failed, "model_rows": result.model_rows, "cached_rows": result.cached_rows, "wall_s": result.wall_s,
            "cost_usd": result.cost_usd,
        }))
    else:
        gold = cfg.gold_column if cfg.gold_column and cfg.gold_column in result.frame.columns else None
        why = f"accuracy against {gold}" if gold else "no gold column: label counts, confidence, the rows to review first"
        click.echo(f"wrote {result.output_path} (columns {', '.join(result.columns.values())}); next: labelmill eval {config} {output} ({why})")
