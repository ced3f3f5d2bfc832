"""`labelmill guidelines log|show|diff|checkout|commit CONFIG`: a config's guideline versions in the
project store, named by the config's `name`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from labelmill.core.strategy import max_time_option


def _versions(config: str, project: str):
    from labelmill.config import load_config
    from labelmill.store import Store
    from labelmill.strategies.refine.versions import GuidelineVersions

    cfg = load_config(config)
    return cfg, GuidelineVersions(Store(project), cfg.name or cfg.task)


_project = click.option("--project", default="labelmill.db", show_default=True, help="The project store.")


@click.group(name="guidelines")
def guidelines_group() -> None:
    """A config's written guideline as versions: content, parent, diff, rationale, author and figures."""


@guidelines_group.command(name="commit")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.argument("document", type=click.Path(dir_okay=False), required=False)
@click.option("-m", "--message", "rationale", required=True, help="Why the guideline changed.")
@click.option("--author", default=None, help="Who wrote it (default: $USER).")
@_project
def commit_command(config: str, document: str | None, rationale: str, author: str | None, project: str) -> None:
    """Store DOCUMENT (Markdown; default: the config's own guidelines and label descriptions) as a version."""
    import os

    from labelmill.guideline import Guideline

    cfg, versions = _versions(config, project)
    from labelmill.strategies.refine.run import prompt_hash

    text = Path(document).read_text(encoding="utf-8") if document else Guideline.from_config(cfg).render()
    parsed = Guideline.parse(text)  # a malformed document is an error here, not a surprise later
    version = versions.commit(text, rationale=rationale, author=author or os.environ.get("USER") or "person", prompt_hash=prompt_hash(cfg, parsed))
    click.echo(f"{version.id} {rationale}")


@guidelines_group.command(name="log")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help='Print a JSON summary.')
@_project
def log_command(config: str, as_json: bool, project: str) -> None:
    """The head's history, newest first."""
    _, versions = _versions(config, project)
    history = versions.log()
    made = versions.store.count_by_guidelines([h.prompt_hash for h in history if h.prompt_hash])
    if as_json:
        click.echo(json.dumps([{k: v for k, v in vars(h).items() if k not in ("content", "diff")} | {"labels": made.get(h.prompt_hash or "", 0)}
                               for h in history]))
        return
    for h in history:
        figures = "".join(f"  {name} {json.dumps(fig)}" for name, fig in (("dev", h.dev), ("held-out", h.heldout)) if fig)
        labels = f"  labels made with it: {made.get(h.prompt_hash, 0)}" if h.prompt_hash else ""
        click.echo(f"{h.id}  {time.strftime('%Y-%m-%d %H:%M', time.localtime(h.created_at))}  {h.author}: {h.rationale}{figures}{labels}")


@guidelines_group.command(name="show")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.argument("rev", default="HEAD")
@click.option("--prompt", is_flag=True, help="What the labeler reads (no evidence notes).")
@_project
def show_command(config: str, rev: str, prompt: bool, project: str) -> None:
    """Print version REV (an id, a prefix, HEAD or HEAD~N)."""
    from labelmill.guideline import Guideline

    _, versions = _versions(config, project)
    content = versions.get(rev).content
    click.echo(Guideline.parse(content).prompt_text() if prompt else content, nl=False)


@guidelines_group.command(name="diff")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.argument("a", default="HEAD~1")
@click.argument("b", default="HEAD")
@_project
def diff_command(config: str, a: str, b: str, project: str) -> None:
    """The unified diff from A to B."""
    _, versions = _versions(config, project)
    click.echo(versions.diff(a, b), nl=False)


@guidelines_group.command(name="checkout")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.argument("rev")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the version's Markdown here.")
@_project
def checkout_command(config: str, rev: str, out: str | None, project: str) -> None:
    """Make REV the head (and write it to --out)."""
    _, versions = _versions(config, project)
    version = versions.checkout(rev)
    if out:
        Path(out).write_text(version.content, encoding="utf-8")
    click.echo(f"HEAD is now {version.id} {version.rationale}")


@click.command(name="refine")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.argument("dev", type=click.Path(exists=True, dir_okay=False))
@click.option("--rounds", default=2, show_default=True, type=click.IntRange(1, 20), help='Rounds of proposals, each scored on held-out dev rows (the best guideline is kept).')
@click.option("--proposer-model", help="The model that drafts edits (a catalog name such as qwen2.5-coder-1.5b; default: the labeler's).")
@click.option("--max-rules", default=3, show_default=True, type=click.IntRange(1, 10), help="Error groups per round (a rule and a definition each).")
@click.option("--beam", default=3, show_default=True, type=click.IntRange(1, 10), help="Best candidates tried on the held-out rows each round.")
@max_time_option(help="Stop between steps once this much time is spent: seconds, or 10m, 1h (what was accepted is kept).")
@click.option("--max-cost", type=click.FloatRange(min=0), help="USD: stop between steps once the labeling calls cost this much.")
@click.option("--metric", default="accuracy", show_default=True, type=click.Choice(["accuracy", "macro_f1"]), help="What an edit must improve.")
@click.option("--explainer", default="labeler", show_default=True, type=click.Choice(["labeler", "proposer"]), help="Who explains the errors.")
@click.option("--max-candidates", type=click.IntRange(1, 50), help="Guidelines scored per round (default: each edit alone, then the ones that helped, together).")
@click.option("--interactive", is_flag=True, help="Show each proposed edit with its evidence: accept, edit or reject it.")
@click.option("--review", "in_app", is_flag=True, help="People decide in the review app's guideline page: stop at the first proposals "
              "without a decision; run again once they are decided.")
@click.option("--limit", type=click.IntRange(min=20), help="Only the first N dev rows.")
@click.option("--json", "as_json", is_flag=True, help='Print a JSON summary.')
@_project
def refine_command(config: str, dev: str, rounds: int, proposer_model: str | None, max_rules: int, beam: int, max_time_s: float | None,
                   max_cost: float | None, metric: str, explainer: str, max_candidates: int | None, interactive: bool, in_app: bool, limit: int | None, as_json: bool, project: str) -> None:
    """Improve CONFIG's written guideline from the labeler's errors on DEV (rows with the gold column):
    each round proposes edits for the largest error groups and keeps one only if held-out dev rows improve."""
    import os
    from dataclasses import asdict, replace

    from labelmill.core.strategy import progress_handler
    from labelmill.io import read_rows
    from labelmill.strategies.refine.run import Edit, refine

    frame = read_rows(dev)
    if limit:
        frame = frame.head(limit)
    person = os.environ.get("USER") or "person"

    def decide(edit: Edit) -> Edit | None:
        click.echo(f"\nproposed: {edit.describe()}\n  evidence: {edit.evidence}\n  by: {edit.author}")
        answer = click.prompt("  [a]ccept, [e]dit, [r]eject", type=click.Choice(["a", "e", "r"]), default="a", show_choices=False)
        if answer == "r":
            return None
        if answer == "e":
            text = click.prompt("  your wording", default=edit.text).strip()
            return replace(edit, text=text, author=person) if text else None
        return replace(edit, author=f"{edit.author}, accepted by {person}")

    if interactive and in_app:
        raise click.UsageError("--interactive asks here, --review in the app: pick one")
    if in_app:
        from labelmill.config import load_config
        from labelmill.strategies.refine.proposals import ReviewDecisions

        cfg = load_config(config)
        decide = ReviewDecisions(project, cfg.name or cfg.task)
    result = refine(config, frame, project=project, rounds=rounds, max_rules=max_rules, beam=beam, budget_s=max_time_s, max_cost=max_cost,
                    decide=decide if interactive or in_app else None, metric=metric, explainer=explainer, max_candidates=max_candidates, proposer={"name": proposer_model} if proposer_model else None,
                    on_event=progress_handler(quiet=as_json and not interactive))
    if as_json:
        click.echo(json.dumps({"rounds": [asdict(r) for r in result.rounds], "final_version": result.final_version, "projection": result.projection,
                               "calls": result.calls, "cost_usd": result.cost_usd, "stopped": result.stopped}, default=float))
        return
    p = result.projection
    click.echo(f"projected: at most {p['label_calls']} labeling calls and {p['text_calls']} generated texts; made: {result.calls['label']} and {result.calls['text']}")
    for r in result.rounds:
        click.echo(f"round {r.round}: search {r.search_before:.3f}, held-out {r.heldout_before:.3f}, {r.errors} errors; "
                   f"{len(r.candidates)} candidates; " + (f"accepted {r.accepted} (held-out {r.heldout_after:.3f})" if r.accepted else "nothing accepted"))
    if result.stopped == "review":
        click.echo(f"{decide.waiting} proposed edit(s) wait for a person in the review app (its guideline page); run this command again once they are decided")
    elif result.stopped:
        click.echo(f"stopped early by --{'max-time' if result.stopped == 'budget_s' else 'max-cost'}")
    click.echo(f"head: {result.final_version} (labelmill guidelines show {config})")
