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
