"""refine's guideline document and its versions in the store (`labelmill guidelines`)."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from labelmill.cli import cli
from labelmill.cli.app import _add_strategy_commands
from labelmill.guideline import Guideline, Rule

DOC = """# Guideline: agnews-topics

Classify the topic of the news article.

## Labels
- **World**: world affairs, politics, governments, wars, diplomacy
- **Sci/Tech**: science, technology, computers, software, the internet, space

## Rules
1. A company's product launch is Sci/Tech when the product is technology,
   Business otherwise.
   _Evidence: 6 errors (Business -> Sci/Tech), e.g. rows 12, 40. Author: refine (qwen2.5-coder-1.5b)._
2. Sports business (transfers, stadium deals) is Sports.
"""


def test_document_parses_and_renders_back():
    g = Guideline.parse(DOC)
    assert g.title == "agnews-topics" and g.intro == "Classify the topic of the news article."
    assert g.labels == {"World": "world affairs, politics, governments, wars, diplomacy", "Sci/Tech": "science, technology, computers, software, the internet, space"}
    assert g.rules[0] == Rule("A company's product launch is Sci/Tech when the product is technology, Business otherwise.",
                              "6 errors (Business -> Sci/Tech), e.g. rows 12, 40", "refine (qwen2.5-coder-1.5b)")
    assert g.rules[1].text == "Sports business (transfers, stadium deals) is Sports." and not g.rules[1].evidence
    assert Guideline.parse(g.render()) == g
    prompt = g.prompt_text()
    assert "Evidence" not in prompt and "1. A company's product launch" in prompt and "- World: world affairs" in prompt


def test_a_malformed_label_line_is_a_clear_error():
    with pytest.raises(Exception, match="not '- \\*\\*label\\*\\*: definition'"):
        Guideline.parse("# Guideline: x\n## Labels\nWorld = politics\n")


def test_versions_commit_log_show_diff_checkout(tmp_path):
    _add_strategy_commands()
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"task": "classification", "name": "agnews-topics", "labels": [
        {"name": "World", "description": "world affairs"}, {"name": "Sci/Tech", "description": "technology"}],
        "guidelines": "Classify the topic of the news article.", "model": {"backend": "fake"}}))
    project = str(tmp_path / "p.db")
    runner = CliRunner()

    def run(*args):
        out = runner.invoke(cli, ["guidelines", *args, "--project", project])
        assert out.exit_code == 0, out.output
        return out.output

    first = run("commit", str(config), "-m", "the config's guideline", "--author", "ana").split()[0]
    doc = tmp_path / "g.md"
    doc.write_text(DOC)
    second = run("commit", str(config), str(doc), "-m", "rules from the first round's errors", "--author", "refine").split()[0]
    log = json.loads(run("log", str(config), "--json"))
    assert [v["id"] for v in log] == [second, first] and log[0]["parent"] == first and log[1]["parent"] is None
    assert log[0]["rationale"] == "rules from the first round's errors" and log[0]["author"] == "refine"
    assert run("show", str(config)) == DOC
    assert "Evidence" not in run("show", str(config), "HEAD", "--prompt")
    diff = run("diff", str(config))
    assert diff.startswith(f"--- agnews-topics@{first}") and "+1. A company's product launch" in diff
    run("checkout", str(config), "HEAD~1", "--out", str(tmp_path / "back.md"))
    assert json.loads(run("log", str(config), "--json"))[0]["id"] == first
    assert (tmp_path / "back.md").read_text().startswith("# Guideline: agnews-topics")
    # the same content again is the same version; a commit needs a rationale
    assert run("commit", str(config), str(doc), "-m", "again").split()[0] == second
    bad = runner.invoke(cli, ["guidelines", "show", str(config), "ffff", "--project", project])
    assert bad.exit_code != 0


def test_a_config_reads_its_guideline_file(tmp_path):
    from labelmill.config import load_config
    from labelmill.tasks import make_task

    (tmp_path / "g.md").write_text(DOC)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"task": "classification", "name": "agnews-topics", "labels": ["World", "Sci/Tech"],
                                                     "guidelines_file": "g.md", "model": {"backend": "fake"}}))
    cfg = load_config(tmp_path / "c.yaml")
    assert "1. A company's product launch is Sci/Tech" in cfg.guidelines and "Evidence" not in cfg.guidelines
    prompt = make_task(cfg).build_prompt("Apple unveils a new phone", [])
    assert "Rules:" in prompt.system
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"task": "classification", "labels": ["a", "b"], "guidelines_file": "missing.md"}))
    with pytest.raises(Exception, match="guidelines_file: cannot read"):
        load_config(tmp_path / "c.yaml")


def test_refine_accepts_a_rule_that_fixes_an_error_group_on_held_out_rows(tmp_path):
    """The fake labeler reads rules of the form "'WORD' means LABEL" (rule_words); it does not know
    'dreadful'. The fake proposer, shown the dreadful rows labeled positive, writes that rule."""
    import pandas as pd

    from labelmill.store import Store
    from labelmill.strategies.refine.loop import refine
    from labelmill.strategies.refine.versions import GuidelineVersions

    rows = []
    for i in range(12):
        rows += [{"text": f"a dreadful film number {i}", "label": "negative"}, {"text": f"a good film number {i}", "label": "positive"},
                 {"text": f"a bad film number {i}", "label": "negative"}]
    config = {"task": "classification", "name": "movies", "labels": ["positive", "negative"], "guidelines": "Classify the sentiment.",
              "input_template": "{text}", "gold_column": "label", "examples": {"k": 0},
              "model": {"backend": "fake", "params": {"keywords": {"positive": ["good"], "negative": ["bad"]}, "rule_words": True,
                                                        "replies": [[r"These texts are (\w+), but[\s\S]*?(dreadful)", "Rule: '{1}' means {0}."]],
                                                        "default_reply": "the wording shows it."}}}
    result = refine(config, pd.DataFrame(rows), project=tmp_path / "p.db", rounds=2)
    first = result.rounds[0]
    assert first.errors > 0 and first.groups[0]["gold"] == "negative" and first.groups[0]["predicted"] == "positive"
    assert first.accepted is not None and first.heldout_after == 1.0 > first.heldout_before
    assert "'dreadful' means negative." in result.final.prompt_text()
    assert len(result.rounds) == 2 and result.rounds[1].errors == 0 and result.rounds[1].accepted is None
    with Store(tmp_path / "p.db") as store:
        history = GuidelineVersions(store, "movies").log()
    assert [v.author for v in history] == ["refine (fake:qwen2.5-coder-0.5b)", "config"] or history[0].author.startswith("refine (fake")
    top = history[0]
    assert "+1. 'dreadful' means negative." in top.diff and "negative labeled positive" in top.rationale
    assert top.dev["search_accuracy"] == 1.0 and top.heldout["accuracy"] == 1.0 and top.heldout["before"] < 1.0


def test_a_proposal_that_repeats_a_text_or_the_guideline_is_no_rule():
    from labelmill.strategies.refine.loop import clean_rule, is_copy

    text = "Citing market conditions for the move, HP has dropped the processor after Intel started shipping x86 chips."
    assert is_copy(clean_rule("Rule: " + text), [text])
    assert is_copy("Classify the topic of the news article.", ["Classify the topic of the news article."])
    assert not is_copy("A story about a chip maker's products is Sci/Tech, even when it mentions prices.", [text, "Classify the topic."])
    assert clean_rule("1. 'dreadful' means negative.\nmore") == "'dreadful' means negative."
