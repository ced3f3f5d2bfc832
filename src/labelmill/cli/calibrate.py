"""`labelmill calibrate CONFIG SEED`: fit a calibration on seed rows and choose a bounded threshold."""

from __future__ import annotations

import json

import click

from labelmill import api
from labelmill.cli.app import cli, command_config
from labelmill.cli.progress import ProgressView


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("seed", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out", default="calibration.json", show_default=True, help="Where to write the calibration.")
@click.option("--method", type=click.Choice(["auto", "temperature", "bias", "isotonic", "platt", "bias_platt", "fused"]), default="auto", show_default=True,
              help="fused: a logistic regression over the confidence and the reasoning signals (p_true, verbalized, agreement).")
@click.option("--target", type=click.FloatRange(0.5, 1.0, max_open=True), default=0.95, show_default=True, help="Target accuracy of auto-labeled rows.")
@click.option("--delta", type=click.FloatRange(0.001, 0.5), default=0.05, show_default=True, help="The target holds with probability 1 - delta.")
@click.option("--project", default=api.DEFAULT_PROJECT, show_default=True, help="SQLite project file (the seed rows' labels are cached there).")
@click.option("--json", "as_json", is_flag=True, help="Print the seed report as JSON.")
@click.option("--threshold-rows", type=click.Path(dir_okay=False, exists=True), help="More labeled rows (not the seed rows) to choose the threshold on: a bound needs a few hundred.")
@click.option("--encoding", help="Input text encoding (overrides dataset.encoding).")
def calibrate(config: str, seed: str, out: str, method: str, target: float, delta: float, project: str, as_json: bool, threshold_rows: str | None,
              encoding: str | None) -> None:
    """Label SEED (rows with gold labels), fit a calibration and a threshold with a bound, and save them."""
    view = ProgressView(quiet=as_json)
    cfg = command_config(config, view, encoding=encoding)
    calibrator = api.calibrate(cfg, seed, method=method, target=target, delta=delta, out=out, project=project, on_event=view, threshold_rows=threshold_rows)
    report = calibrator.seed_report
    if as_json:
        click.echo(json.dumps({"out": out, **report}, indent=1))
        return
    chosen = report["threshold"]
    click.echo(
        f"method: {report['method']} on {report['seed_rows']} seed rows; accuracy {report['accuracy_raw']:.3f} -> {report['accuracy_calibrated_cv']:.3f} (cross-validated)\n"
        f"ECE {report['ece_raw']:.3f} -> {report['ece_calibrated_cv']:.3f} (cross-validated)\n"
        + (
            f"threshold for {target:.0%} accuracy (holds with probability {1 - delta:.0%}): {chosen['threshold']:.3f}; "
            f"on the {report['threshold_chosen_on']} it auto-labels {chosen['seed_share']:.0%} at accuracy {chosen['seed_accuracy']:.3f} (lower bound {chosen['lower_bound']:.3f})"
            if chosen else f"no threshold reaches {target:.0%} accuracy with probability {1 - delta:.0%} on the {report['threshold_chosen_on']}: every row goes to review "
            "(--threshold-rows with a few hundred labeled rows, a lower --target or a larger --delta can find one)"
        )
        + (
            f"\nwithout the bound: threshold {report['threshold_without_bound']['threshold']:.3f} reaches {target:.0%} on the {report['threshold_chosen_on']} "
            f"({report['threshold_without_bound']['seed_share']:.0%} of them)" if report.get("threshold_without_bound") else ""
        )
        + f"\nwrote {out}; next: labelmill run {config} INPUT --out OUT --calibration {out}"
    )
