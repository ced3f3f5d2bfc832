"""`labelmill review`: open a labeled run for review in a local web app, or (headless) export it, import
Label Studio annotations, or let a gold column play the reviewer."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

SWITCH_INTERVAL = 0.001  # seconds: see serve()
LOCAL_BACKENDS = ("llama_cpp",)  # the embedded model: no money per answer, so the app's model steps are on by default


@click.command(name="review")
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("data", type=click.Path())
@click.option("--project", default="labelmill.db", show_default=True, help="The project store that holds the run's labels and the reviews.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (127.0.0.1: this machine only).")
@click.option("--port", default=8765, show_default=True, type=int, help='Port to serve on.')
@click.option("--annotator", "annotators", multiple=True, help="An annotator's name (repeat for several); each gets a login link with its own token.")
@click.option("--tokens", "tokens_file", type=click.Path(dir_okay=False), help="Also write {name: login URL} to this file (mode 0600).")
@click.option("--target", default=0.95, show_default=True, type=click.FloatRange(0.5, 1.0), help="Accuracy the whole dataset should reach.")
@click.option("--budget", help="Most reviews: rows (200), a share (15%) or a time (30m).")
@click.option("--overlap", default=1, show_default=True, type=click.IntRange(1, 10), help="Annotators per row (agreement needs 2 or more).")
@click.option("--blind", is_flag=True, help="Hide the model's label and confidence and other annotators' labels.")
@click.option("--batch", default=10, show_default=True, type=click.IntRange(1, 10_000), help="Reviews between refits of the loop.")
@click.option("--calibration", type=click.Path(exists=True, dir_okay=False), help="A calibration file from `labelmill calibrate` (its threshold marks trusted rows).")
@click.option("--trust-above", type=click.FloatRange(0.0, 1.0), help="Rows at or above this calibrated confidence never enter the queue.")
@click.option("--no-student", is_flag=True, help="No student or embeddings: rank by the model's confidence only.")
@click.option("--seed-rows", default=1000, show_default=True, type=click.IntRange(0, 100_000),
              help="Labeled examples held out as the seed that calibrates the loop (labeled by the model once; at most a quarter of the examples).")
@click.option("--student", "student_kind", type=click.Choice(["linear", "finetuned"]), default="linear", show_default=True,
              help="finetuned: fine-tune the sentence encoder on the config's examples first (minutes, once; cached in the store).")
@click.option("--export", "export_format", type=click.Choice(["jsonl", "csv", "parquet", "label-studio", "argilla", "hf", "conll", "spacy"]), help="Write the reviewed dataset and exit.")
@click.option("--out", "out_path", type=click.Path(), help="Where --export writes.")
@click.option("--import-label-studio", "ls_import", type=click.Path(exists=True, dir_okay=False), help="Add the annotations of a Label Studio JSON export and exit.")
@click.option("--simulate", "gold_column", help="Headless: this column answers as the reviewer (tests, benchmarks).")
@click.option("--reviews", type=click.IntRange(min=1), help="With --simulate: how many reviews.")
@click.option("--relabel", type=click.IntRange(min=1), help="Headless: the model labels this many of the most uncertain unreviewed rows again, "
              "with the nearest reviewed rows as demos.")
@click.option("--relabel-every", type=click.IntRange(min=1), help="App: after this many reviews, relabel the --relabel-rows most "
              "uncertain rows in the background with the nearest reviewed rows as demos (the model runs in the app's process). "
              "Default with the embedded model: every 50 reviews, once the strategy search (--tune-after) found that demos pay.")
@click.option("--relabel-rows", default=200, show_default=True, type=click.IntRange(min=1), help='With --relabel: how many of the most uncertain rows the relabel step labels again.')
@click.option("--propose-every", type=click.IntRange(min=1), help="App: after this many reviews (20 at least), refine proposes guideline "
              "edits from the model's errors on the reviewed rows in the background; they wait on the guideline page for a person.")
@click.option("--tune-after", type=click.IntRange(min=40), help="Once this many rows are reviewed (40 at least), search the relabel "
              "step's demos on them in the background (tune: zero-shot against 4- and 8-shot similar and balanced demos, half the reviews "
              "as the pool, half scored); the step uses the best only where it beat zero-shot. Headless: run before --relabel. "
              "Default with the embedded model: 40.")
@click.option("--no-relabel", is_flag=True, help="App: no strategy search and no relabel step unless --tune-after or --relabel-every asks.")
@click.option("--tier-model", help="A stronger model (e.g. qwen2.5-coder-1.5b; `labelmill models pull` it first) that labels the "
              "--tier-share of rows the first labeler was least sure of: in the background as the app opens, before --simulate headless.")
@click.option("--tier-share", default=0.5, show_default=True, type=click.FloatRange(0.0, 1.0, min_open=True), help='With --tier-model: the share of rows (those the first labeler was least sure of) the stronger model labels.')
@click.option("--audit", default=20, show_default=True, type=click.IntRange(min=0),
              help="Rows drawn at random among the first reviews (every other one until this many, then --audit-every): "
              "they make the accuracy estimate and its interval honest. 0: none.")
@click.option("--audit-every", default=20, show_default=True, type=click.IntRange(min=0), help="After the first --audit rows, one review in this many is a random audit row (0: none).")
@click.option("--audit-uniform", default=0.6, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="The uniform share of each audit draw; the rest goes to rows in proportion to 1 - confidence (rows likely wrong, which "
              "teach the loop more), each weighted back in the estimate. 1: plain random audit rows.")
@click.option("--reviewer", "reviewers", multiple=True, help="An annotator who may resolve conflicts (repeatable; also added as an annotator). "
              "Without any, every annotator may.")
@click.option("--revoke", multiple=True, help="Remove this annotator's token (repeatable); their reviews stay.")
@click.option("--keep-tokens", is_flag=True, help="Keep the tokens of annotators not named with --annotator (by default only the named ones can log in).")
@click.option("--json", "as_json", is_flag=True, help="Headless: print the status as JSON.")
def review_command(config, data, project, host, port, annotators, tokens_file, target, budget, overlap, blind, batch, calibration, trust_above,
                   no_student, seed_rows, student_kind, export_format, out_path, ls_import, gold_column, reviews, relabel, relabel_every,
                   relabel_rows, no_relabel, propose_every, tune_after, tier_model, tier_share, audit, audit_every, audit_uniform, reviewers, revoke, keep_tokens, as_json):
    """Review the labels of DATA (an input file or the output of `labelmill run`) with CONFIG.

    Starts a web app on 127.0.0.1: the rows most worth a person's time first, a keyboard for each task
    type, and the loop (refit, relabel, re-rank) after every batch of reviews. Every review is saved in
    the project store before the next row is shown.
    """
    from labelmill.core.strategy import progress_handler
    from labelmill.strategies.review.run import ReviewSession

    headless = bool(export_format or ls_import or gold_column or relabel or as_json)
    session = ReviewSession.open(
        config, data, project=project, calibration=calibration, target=target, trust_threshold=trust_above, batch=batch, overlap=overlap,
        blind=blind, budget=budget, student=False if no_student else ("finetuned" if student_kind == "finetuned" else True),
        seed_rows=seed_rows, audit=audit, audit_every=audit_every, audit_uniform=audit_uniform, tier_model=tier_model, tier_share=tier_share,
        on_event=progress_handler(quiet=as_json),
    )
    session.relabel_rows = relabel_rows
    session.propose_every = propose_every or 0
    if headless:  # the search runs in turn, before --relabel
        session.relabel_every = relabel_every or 0
    else:
        model_steps(session, tune_after, relabel_every, default=not no_relabel and session.config.model.backend in LOCAL_BACKENDS)
    if headless:
        if tier_model:
            click.echo(f"{tier_model} labeled {session.escalate()} rows the first labeler was least sure of", err=True)
        _headless(session, export_format, out_path, ls_import, gold_column, reviews, as_json, {"tune_after": tune_after, "relabel": relabel})
        return
    names = list(dict.fromkeys([*annotators, *reviewers])) or [os.environ.get("USER") or "reviewer"]
    session.reviewers = set(reviewers) if reviewers else None
    dropped = session.log.revoke(list(revoke) + ([] if keep_tokens else [n for n in session.log.annotators() if n not in names]))
    if dropped:
        click.echo(f"revoked the tokens of {', '.join(dropped)} (their reviews stay)", err=True)
    names = [n for n in names if n not in revoke]
    links = {}
    for name in names:
        token = session.log.add_annotator(name)
        links[name] = f"http://{host}:{port}/login?token={token}"
    if tokens_file:
        path = Path(tokens_file)
        path.write_text(json.dumps(links), encoding="utf-8")
        path.chmod(0o600)
    status = session.status()
    click.echo(f"{status['rows']} rows, {status['reviewed']} reviewed, {status['in_queue']} in the queue; estimated accuracy "
               f"{status['estimated_accuracy']:.3f} (target {target:.2f})", err=True)
    for name, url in links.items():
        click.echo(f"  {name}: {url}", err=True)
    session.escalate_in_background()
    serve(session, host, port)


def model_steps(session, tune_after: int | None, relabel_every: int | None, default: bool) -> None:
    """The app's background model steps. Asked for, they run as asked (a relabel step asked for runs from the
    start with the nearest reviewed rows). By default (`default`: a local model, so the steps cost no money)
    the strategy search runs once TUNE_MIN_ROWS rows are reviewed, and the relabel step every RELABEL_EVERY
    reviews only once that search found demos that beat zero-shot on the reviewed rows."""
    from labelmill.strategies.review.run import RELABEL_EVERY, TUNE_MIN_ROWS

    session.tune_after = tune_after or (TUNE_MIN_ROWS if default else 0)
    session.relabel_every = relabel_every or (RELABEL_EVERY if default else 0)
    session.relabel_after_search = not relabel_every and default
    if default and session.names:
        kept = session.relabel_search
        search = (f"after {session.tune_after} reviews a strategy search on them" if kept is None else
                  f"the strategy search of an earlier session holds (relabel step {kept['relabel']}); no new search")
        click.echo(f"the model's own steps: {search}; a relabel step every {session.relabel_every} reviews if demos pay "
                   "(--no-relabel: off)", err=True)


def serve(session, host: str, port: int) -> None:
    from labelmill.errors import MissingDependencyError

    try:
        import uvicorn

        from labelmill.strategies.review.app import create_app
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "fastapi", "review", "the review web app") from None

    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: binding {host}: anyone who can reach it and holds a token can review", err=True)
    # The refit thread computes while requests wait on SQLite and sockets; each time a request thread gets
    # the interpreter back it waits out the switch interval (5 ms by default), many times per request.
    sys.setswitchinterval(SWITCH_INTERVAL)
    uvicorn.run(create_app(session), host=host, port=port, log_level="warning", loop="asyncio", http="h11", ws="none")


def _headless(session, export_format, out_path, ls_import, gold_column, reviews, as_json, model_steps: dict) -> None:
    """The headless steps in order: import, simulate, the strategy search and the relabel step (`model_steps`), export, status."""
    from labelmill.errors import InputDataError
    from labelmill.strategies.review.exports import export, import_label_studio

    if ls_import:
        count = import_label_studio(session, ls_import)
        click.echo(f"imported {count} annotations from {ls_import}", err=True)
    if gold_column:
        if gold_column not in session.frame.columns:
            raise InputDataError(f"no column {gold_column!r} to play the reviewer", fix=f"columns: {', '.join(map(str, session.frame.columns))}")
        gold = session.frame[gold_column].astype(str).tolist()
        done = session.simulate(lambda i: gold[i], reviews=reviews)
        click.echo(f"simulated {done} reviews from column {gold_column!r}", err=True)
    tune_after, relabel = model_steps.get("tune_after"), model_steps.get("relabel")
    if tune_after:
        from labelmill.strategies.review.run import search_summary

        reviewed = len(session.reviewed())
        click.echo(search_summary(session.tune_relabel()) if reviewed >= tune_after else
                   f"no strategy search: {reviewed} rows reviewed, --tune-after asks for {tune_after}", err=True)
    if relabel:
        count = session.relabel(relabel)
        click.echo(f"relabeled {count} rows with reviewed rows as demos" if count or session.relabel_k else
                   "relabeled nothing: demos did not beat zero-shot on the reviewed rows", err=True)
    if export_format:
        if not out_path:
            raise click.UsageError("--export needs --out")
        path = export(session, export_format, out_path)
        click.echo(f"wrote {path}", err=True)
    status = session.status()
    if as_json:
        from labelmill.types import finite

        click.echo(json.dumps(finite(status), default=float))
    else:
        click.echo(f"{status['reviewed']} of {status['rows']} rows reviewed; estimated accuracy {status['estimated_accuracy']:.3f} "
                   f"(lower bound {status['lower_bound']:.3f}); {status['in_queue']} in the queue", err=True)
