"""`labelmill export CONFIG DATA --format FORMAT --out PATH`: labeled output in the formats other tools read.

label-studio, triples and spacy read the output of `labelmill run`. With --project (or for the formats only a
review writes: jsonl, csv, parquet, argilla, hf, conll) the run's reviews come along: the model's label as
a prediction or suggestion, each person's review as an annotation or response, and the review columns.
"""

from __future__ import annotations

import click

from labelmill.cli.app import cli
from labelmill.exports import FORMATS, export

REVIEW_FORMATS = ("jsonl", "csv", "parquet", "label-studio", "argilla", "hf", "conll", "spacy")


@cli.command(name="export")
@click.argument("config")
@click.argument("labeled")
@click.option("--format", "fmt", type=click.Choice(sorted(set(FORMATS) | set(REVIEW_FORMATS))), required=True,
              help="label-studio: tasks JSON with predictions (and annotations); triples: relations as JSON lines; jsonl, csv, parquet: "
                   "with the review columns; argilla: an Argilla 2.x dataset folder; hf: a Hugging Face datasets folder; conll: NER as BIO; spacy: a spaCy DocBin (NER spans; relations in doc._.rel).")
@click.option("-o", "--out", "out", required=True, help="Where to write (a folder for argilla and hf).")
@click.option("--project", help="The project store holding the run and its reviews (labelmill review).")
def export_command(config: str, labeled: str, fmt: str, out: str, project: str | None) -> None:
    """Write LABELED (what `labelmill run` wrote with CONFIG, or its input) in another tool's format."""
    if project is None and fmt in FORMATS:
        path = export(config, labeled, fmt, out)
    else:
        from labelmill.strategies.review.exports import export as export_reviewed
        from labelmill.strategies.review.run import ReviewSession

        session = ReviewSession.open(config, labeled, project=project or "labelmill.db", student=False)
        try:
            path = export_reviewed(session, fmt, out)
        finally:
            session.close()
    click.echo(f"wrote {path}")
