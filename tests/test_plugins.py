"""A task type and a strategy from outside the package, found through entry points, run end to end on the
fake backend with no edit to labelmill: config validation, `labelmill init`, `run`, the strategy's own
command, table and migration, and its section in `eval`'s metrics and report."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import textwrap
from pathlib import Path

import pandas as pd
import yaml

from conftest import cli_command, child_env

PLUGIN = '''
"""labelmill_demo_plugin: a 'stance' task type with its own config section and a 'majority' strategy, from outside labelmill."""
from __future__ import annotations

import math
from collections import Counter

import click
from pydantic import Field

from labelmill.config import Strict

from labelmill.core import Job, Runner
from labelmill.store import Store
from labelmill.core.strategy import EvalContext, Strategy
from labelmill.registry import Section
from labelmill.tasks.base import Task
from labelmill.types import Label, ParseFailure


class StanceSpec(Strict):
    """The stance task's own section: what the texts take a stance on."""

    proposal: str = Field("the proposal", description="What the texts are for or against.")


SECTION = Section("stance", StanceSpec, owner="task stance", fingerprint="unless_default")


class StanceTask(Task):
    """Is the text for or against the proposal? A closed pair, scored."""

    @classmethod
    def configure(cls, config):
        from labelmill.config import LabelSpec

        if not config.labels:
            config.labels = [LabelSpec(name="for"), LabelSpec(name="against")]
        if len(config.labels) != 2:
            raise ValueError("labels: a stance task has exactly two labels")

    @classmethod
    def template(cls, name):
        return "task: stance\\nname: my-stance\\nguidelines: Is the text for or against the proposal?\\n"

    def system_prompt(self):
        return f"Is the text for or against {self.config.stance.proposal}?\\n\\nLabels:\\n- for\\n- against\\n\\nAnswer with the label only."

    def candidates(self):
        return list(self.labels)

    def from_scores(self, result, row=None):
        if result.error:
            return ParseFailure(result.error, "", result.error_detail)
        top = max(result.logprobs)
        probs = [math.exp(x - top) for x in result.logprobs]
        total = sum(probs)
        dist = {n: p / total for n, p in zip(self.labels, probs)}
        best = max(dist, key=dist.get)
        return Label(best, dist[best], dist)

    def parse(self, generation, row=None):
        text = generation.text.strip().lower()
        return Label(text) if text in self.labels else ParseFailure("unknown_label", generation.text, "not for/against")

    def parse_gold(self, value):
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)

    def metrics(self, gold, predicted):
        return {"accuracy": sum(g == p for g, p in zip(gold, predicted)) / max(1, len(gold))}

    def is_correct(self, gold, predicted):
        return gold is not None and gold == predicted


class MajorityStrategy(Strategy):
    """Labels every row with the label the model gives most often (a baseline), keeping its own table."""

    name = "majority"
    migrations = ("CREATE TABLE majority_runs (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, label TEXT NOT NULL)",)

    def run(self, config, rows, project, output):
        job = Job(config)
        with Store(project) as store:
            result = Runner(job, store).run(rows)
            table = store.labels(result.run_id, result.total, config.label_names)
            majority = Counter(x for x in table.labels if x is not None).most_common(1)[0][0]
            with self.tables(store).transaction() as db:
                db.execute("INSERT INTO majority_runs (run_id, label) VALUES (?, ?)", (result.run_id, majority))
        frame = result.frame.copy()
        frame["majority_label"] = majority
        frame.to_csv(output, index=False)
        return majority

    def evaluate(self, context: EvalContext):
        if "majority_label" not in context.frame.columns:
            return {}
        hits = [context.task.is_correct(g, v) for g, v in zip(context.gold, context.frame["majority_label"])]
        return {"majority_accuracy": sum(hits) / len(hits)}

    def report_section(self, metrics):
        if "majority_accuracy" not in metrics:
            return None
        return f"<h2>Majority baseline</h2><p>accuracy {metrics['majority_accuracy']:.3f}</p>"

    def command(self):
        @click.command(name="majority")
        @click.argument("config")
        @click.argument("input")
        @click.option("--out", required=True)
        @click.option("--project", default="labelmill.db")
        def majority(config, input, out, project):
            """Label with the model, then write its most common label as a baseline column."""
            from labelmill.config import load_config

            click.echo(f"majority label: {self.run(load_config(config), input, project, out)}")

        return majority


STRATEGY = MajorityStrategy()
'''

ENTRY_POINTS = """
[labelmill.tasks]
stance = labelmill_demo_plugin:StanceTask

[labelmill.sections]
stance = labelmill_demo_plugin:SECTION

[labelmill.strategies]
majority = labelmill_demo_plugin:STRATEGY
"""

ROWS = [
    {"text": "I support this plan, yes please", "label": "for"},
    {"text": "we should support it", "label": "for"},
    {"text": "against it, reject the plan", "label": "against"},
    {"text": "support support", "label": "for"},
    {"text": "no opinion", "label": "against"},
]


def install_plugin(root: Path) -> dict:
    """A real installed distribution (module + dist-info with entry points) on the child's sys.path."""
    root.mkdir(parents=True)
    (root / "labelmill_demo_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = root / "labelmill_demo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: labelmill-demo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    env = child_env()
    env["PYTHONPATH"] = f"{root}:{env['PYTHONPATH']}"
    return env


def test_a_task_type_and_a_strategy_from_outside_run_end_to_end(tmp_path):
    env = install_plugin(tmp_path / "site")
    work = tmp_path / "work"
    work.mkdir()
    run = lambda *args: subprocess.run(cli_command(*args), capture_output=True, text=True, env=env, cwd=work, timeout=120)
    # init knows the plugin's task type and writes its template
    done = run("init", "stance", "--out", "stance.yaml")
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load((work / "stance.yaml").read_text())
    assert config["task"] == "stance"
    config.update(gold_column="label", model={"backend": "fake", "name": "keywords",
                                              "params": {"keywords": {"for": ["support", "yes"], "against": ["against", "reject"]}}})
    config["stance"] = {"proposl": "the plan"}  # a typo in the plugin's own section: named, with the nearest key
    (work / "stance.yaml").write_text(yaml.safe_dump(config))
    pd.DataFrame(ROWS).to_csv(work / "rows.csv", index=False)
    done = run("plan", "stance.yaml", "rows.csv")
    assert done.returncode == 2 and "unknown key 'stance.proposl'; did you mean 'proposal'?" in done.stderr, done.stderr
    config["stance"] = {"proposal": "the new bus lane"}
    (work / "stance.yaml").write_text(yaml.safe_dump(config))
    done = run("plan", "stance.yaml", "rows.csv")
    assert done.returncode == 0 and "for or against the new bus lane?" in done.stdout, done.stdout + done.stderr
    # the core loop labels with the plugin task; eval scores it with the plugin's metrics
    done = run("run", "stance.yaml", "rows.csv", "--out", "out.csv", "--quiet")
    assert done.returncode == 0, done.stderr
    labeled = pd.read_csv(work / "out.csv")
    assert labeled.llm_label.tolist() == ["for", "for", "against", "for", "for"]  # "no opinion": a tie, the first label
    assert labeled.llm_confidence.iloc[0] > 0.9
    # the plugin strategy's command, its own table (created by its migration), and its eval section
    done = run("majority", "stance.yaml", "rows.csv", "--out", "majority.csv")
    assert done.returncode == 0, done.stderr
    assert "majority label: for" in done.stdout
    with sqlite3.connect(work / "labelmill.db") as db:
        assert db.execute("SELECT label FROM majority_runs").fetchall() == [("for",)]
        assert db.execute("SELECT version FROM strategy_migrations WHERE strategy = 'majority'").fetchall() == [(1,)]
        runs = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    assert runs == 1  # the strategy's labeling resumed the same run: nothing was labeled twice
    done = run("eval", "stance.yaml", "majority.csv", "--json")
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    assert metrics["accuracy"] == 0.8 and metrics["majority_accuracy"] == 0.6
    assert "<h2>Majority baseline</h2><p>accuracy 0.600</p>" in (work / "majority.report.html").read_text()


def test_an_unknown_task_type_names_the_registered_ones(tmp_path):
    env = install_plugin(tmp_path / "site")
    (tmp_path / "bad.yaml").write_text("task: stanse\nlabels: [a, b]\n")
    (tmp_path / "rows.csv").write_text("text\nx\n")
    done = subprocess.run(cli_command("plan", str(tmp_path / "bad.yaml"), str(tmp_path / "rows.csv")), capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert "stanse" in done.stderr and "stance" in done.stderr and "classification" in done.stderr
