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
   Example: Apple unveils a faster iPod nano.
   _Evidence: 6 errors (Business -> Sci/Tech), e.g. rows 12, 40. Author: refine (qwen2.5-coder-1.5b)._
2. Sports business (transfers, stadium deals) is Sports.
"""


def test_document_parses_and_renders_back():
    g = Guideline.parse(DOC)
    assert g.title == "agnews-topics" and g.intro == "Classify the topic of the news article."
    assert g.labels == {"World": "world affairs, politics, governments, wars, diplomacy", "Sci/Tech": "science, technology, computers, software, the internet, space"}
    assert g.rules[0] == Rule("A company's product launch is Sci/Tech when the product is technology, Business otherwise.",
                              "6 errors (Business -> Sci/Tech), e.g. rows 12, 40", "refine (qwen2.5-coder-1.5b)", ["Apple unveils a faster iPod nano."])
    assert g.rules[1].text == "Sports business (transfers, stadium deals) is Sports." and not g.rules[1].evidence
    assert Guideline.parse(g.render()) == g
    prompt = g.prompt_text()
    assert "Evidence" not in prompt and "iPod" not in prompt and "1. A company's product launch" in prompt and "- World: world affairs" in prompt


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
    from labelmill.strategies.refine.run import refine
    from labelmill.strategies.refine.versions import GuidelineVersions

    rows = []
    for i in range(12):
        rows += [{"text": f"a dreadful film number {i}", "label": "negative"}, {"text": f"a good film number {i}", "label": "positive"},
                 {"text": f"a bad film number {i}", "label": "negative"}]
    config = {"task": "classification", "name": "movies", "labels": ["positive", "negative"], "guidelines": "Classify the sentiment.",
              "input_template": "{text}", "gold_column": "label", "examples": {"k": 0},
              "model": {"backend": "fake", "params": {"keywords": {"positive": ["good"], "negative": ["bad"]}, "rule_words": True,
                                                        # the proposer must be shown the guideline with its label list, not row numbers
                                                        "replies": [[r"These texts are (\w+), but[\s\S]*?(dreadful)[\s\S]*Guideline:\nClassify the sentiment\.\n\nLabels:\n- positive",
                                                                     "Rule: '{1}' means {0}."]],
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
    assert "+   Example: a dreadful film number" in top.diff  # the rows it decides, for people
    assert top.dev["search_accuracy"] == 1.0 and top.heldout["accuracy"] == 1.0 and top.heldout["before"] < 1.0


def test_a_proposal_that_repeats_a_text_or_the_guideline_is_no_rule():
    from labelmill.strategies.refine.run import clean_rule, is_copy

    text = "Citing market conditions for the move, HP has dropped the processor after Intel started shipping x86 chips."
    assert is_copy(clean_rule("Rule: " + text), [text])
    assert is_copy("Classify the topic of the news article.", ["Classify the topic of the news article."])
    assert not is_copy("A story about a chip maker's products is Sci/Tech, even when it mentions prices.", [text, "Classify the topic."])
    assert clean_rule("1. 'dreadful' means negative.\nmore") == "'dreadful' means negative."
    assert clean_rule("Rule: Texts about chips are Sci/Tech.") == "Texts about chips are Sci/Tech."
    from labelmill.strategies.refine.run import _words

    assert _words("[1, 13, 34, 37, 41, 44, 49, 57, 65]") == 0 and _words("Texts about chips are Sci/Tech.") == 6  # the 1.5B wrote such lists


def movie_rows(n: int = 12) -> list[dict]:
    rows = []
    for i in range(n):
        rows += [{"text": f"a dreadful film number {i}", "label": "negative"}, {"text": f"a good film number {i}", "label": "positive"},
                 {"text": f"a bad film number {i}", "label": "negative"}]
    return rows


def movie_config(replies: list, **extra) -> dict:
    return {"task": "classification", "name": "movies", "labels": ["positive", "negative"], "guidelines": "Classify the sentiment.",
            "input_template": "{text}", "gold_column": "label", "examples": {"k": 0},
            "model": {"backend": "fake", "params": {"keywords": {"positive": ["good"], "negative": ["bad"]}, "rule_words": True,
                                                      "replies": replies, "default_reply": "the wording shows it."}}, **extra}


def test_refine_can_rewrite_a_label_definition_and_every_label_carries_its_version(tmp_path):
    """The fake proposer, asked for a new definition of the label the dreadful rows should have had, writes
    one the fake labeler reads; the accepted version's prompt hash is the one on the labels made with it."""
    import pandas as pd

    from labelmill.store import Store
    from labelmill.strategies.refine.run import prompt_hash, refine
    from labelmill.strategies.refine.versions import GuidelineVersions

    config = movie_config([[r"said (\w+) for these (\w+) texts[\s\S]*?(dreadful)", "A {1} review; '{2}' means {1}."]])
    result = refine(config, pd.DataFrame(movie_rows()), project=tmp_path / "p.db", rounds=1, edits=("define_label",))
    first = result.rounds[0]
    assert first.accepted and first.heldout_after == 1.0 and first.groups[0]["definition"] == "A negative review; 'dreadful' means negative."
    assert result.final.labels["negative"] == "A negative review; 'dreadful' means negative." and not result.final.rules
    with Store(tmp_path / "p.db") as store:
        versions = GuidelineVersions(store, "movies")
        top, base = versions.log()
        assert "define negative" in top.rationale and "negative labeled positive" in top.rationale
        assert "+- **negative**: A negative review" in top.diff
        from labelmill.config import load_config

        assert top.prompt_hash == prompt_hash(load_config(config), result.final)
        made = store.count_by_guidelines([top.prompt_hash, base.prompt_hash])
        every = store.db.execute("SELECT COUNT(*) FROM annotations").fetchone()[0]
    # the search rows with the new definition (and the held-out ones) were labeled with it; every row was labeled first with the base
    assert made[top.prompt_hash] == 36 and made[base.prompt_hash] >= 36
    assert result.calls["label"] == every and result.calls["text"] > 0  # each call the loop counts made one stored label


def test_refine_deletes_a_rule_that_hurts(tmp_path):
    import pandas as pd

    from labelmill.guideline import Guideline, Rule
    from labelmill.store import Store
    from labelmill.strategies.refine.run import refine
    from labelmill.strategies.refine.versions import GuidelineVersions

    config = movie_config([])
    from labelmill.config import load_config

    bad = Guideline.from_config(load_config(config))
    bad.rules = [Rule("'number' means negative.", "a person's guess", "bob"), Rule("'good' means negative.", "another guess", "bob")]
    with Store(tmp_path / "p.db") as store:
        GuidelineVersions(store, "movies").commit(bad.render(), rationale="bob's rule", author="bob")
    rows = [r for r in movie_rows() if "dreadful" not in r["text"]]
    result = refine(config, pd.DataFrame(rows), project=tmp_path / "p.db", rounds=1, edits=("delete_rule",))
    # both rules together outvote 'good'; without either one the fake labeler is right again
    assert result.rounds[0].search_before < 1.0 and result.rounds[0].accepted and result.rounds[0].heldout_after == 1.0
    assert len(result.final.rules) == 1
    with Store(tmp_path / "p.db") as store:
        top = GuidelineVersions(store, "movies").log()[0]
    assert "delete rule 1: 'number' means negative." in top.rationale and "-1. 'number' means negative." in top.diff


def test_refine_projects_its_calls_and_keeps_within_its_budget(tmp_path):
    import pandas as pd

    from labelmill.strategies.refine.run import refine

    config = movie_config([[r"These texts are (\w+), but[\s\S]*?(dreadful)", "Rule: '{1}' means {0}."]])
    seen = []
    result = refine(config, pd.DataFrame(movie_rows()), project=tmp_path / "p.db", rounds=2, max_rules=2, beam=2, budget_s=0.0,
                    on_event=lambda e: seen.append(getattr(e, "message", str(e))))
    # 18 search and 18 held-out rows; per round: both halves, 4 x 2 + 2 candidates on search, 2 on held-out;
    # 24 explanations, two rules and a definition per cluster, one narrower definition
    assert result.projection["label_calls"] == 2 * (18 + 18 + 10 * 18 + 2 * 18) and result.projection["text_calls"] == 2 * (24 + 6 + 1)
    assert result.projection["estimated_cost_usd"] == 0.0  # a local model
    assert any("at most 504 labeling calls" in m for m in seen)
    assert result.stopped == "budget_s" and result.rounds == [] and result.calls == {"label": 0, "text": 0}
    full = refine(config, pd.DataFrame(movie_rows()), project=tmp_path / "q.db", rounds=2, max_rules=2, beam=2)
    assert full.stopped is None and 0 < full.calls["label"] <= full.projection["label_calls"] and full.calls["text"] <= full.projection["text_calls"]


def test_refine_interactive_a_person_edits_one_proposal_and_rejects_another(tmp_path):
    import subprocess

    import pandas as pd
    import yaml

    from conftest import child_env, cli_command

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(movie_config([[r"These texts are (\w+), but[\s\S]*?(dreadful)", "Rule: '{1}' means {0}."]])))
    pd.DataFrame(movie_rows()).to_csv(tmp_path / "dev.csv", index=False)
    env = {**child_env(), "USER": "ana"}
    done = subprocess.run(cli_command("refine", str(tmp_path / "c.yaml"), str(tmp_path / "dev.csv"), "--rounds", "1", "--interactive",
                                      "--project", str(tmp_path / "p.db")),
                          input="e\n'dreadful' means negative, whatever the rest says.\nr\nr\n", env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "proposed: add rule: 'dreadful' means negative." in done.stdout and "evidence: 12 search errors" in done.stdout or "search errors" in done.stdout
    assert "proposed: define negative" in done.stdout  # shown, then rejected
    show = subprocess.run(cli_command("guidelines", "show", str(tmp_path / "c.yaml"), "--project", str(tmp_path / "p.db")), env=env,
                          capture_output=True, text=True)
    assert "1. 'dreadful' means negative, whatever the rest says." in show.stdout and "Author: ana." in show.stdout
    assert "the wording shows it" not in show.stdout  # the rejected definition
    log = subprocess.run(cli_command("guidelines", "log", str(tmp_path / "c.yaml"), "--json", "--project", str(tmp_path / "p.db")), env=env,
                         capture_output=True, text=True)
    history = json.loads(log.stdout)
    assert history[0]["author"] == "ana" and history[0]["labels"] > 0


def test_tune_starts_from_a_refined_guideline_and_keeps_to_a_call_budget(tmp_path):
    import pandas as pd

    from labelmill.strategies.tune.run import tune

    config = movie_config([])
    dev = pd.DataFrame(movie_rows())
    plain = tune(config, dev, shots=(0,), calibrations=("none",), project=tmp_path / "a.db", limit=None)
    refined = tune(config, dev, shots=(0,), calibrations=("none",), project=tmp_path / "b.db", limit=None, guideline="Rules:\n1. 'dreadful' means negative.")
    assert plain["best"]["accuracy"] < 1.0 == refined["best"]["accuracy"]
    assert refined["model_calls"] == len(dev)
    dev = pd.DataFrame(movie_rows(16))  # calibration needs 20 rows in each half
    capped = tune(config, dev, shots=(0,), calibrations=("none", "auto"), project=tmp_path / "c.db", limit=None, max_calls=len(dev) + 5)
    assert [t["status"] for t in capped["trials"]] == ["done", "done"]  # the calibrated trial reuses the cached answers
    from labelmill.errors import ConfigError

    with pytest.raises(ConfigError, match="no strategy finished"):  # not even one trial fits the calls left
        tune(config, dev.assign(text=dev["text"] + " again"), shots=(0,), calibrations=("none",), project=tmp_path / "c.db", limit=None,
             max_calls=len(dev) - 1)


def test_tune_cli_reads_the_guideline_version_it_is_given(tmp_path):
    import subprocess

    import pandas as pd

    from conftest import child_env, cli_command

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(movie_config([])))
    pd.DataFrame(movie_rows()).to_csv(tmp_path / "dev.csv", index=False)
    doc = Guideline("movies", "Classify the sentiment.", {"positive": "", "negative": ""}, [Rule("'dreadful' means negative.", "", "ana")])
    (tmp_path / "g.md").write_text(doc.render())
    env = child_env()
    project = str(tmp_path / "p.db")
    done = subprocess.run(cli_command("guidelines", "commit", str(tmp_path / "c.yaml"), str(tmp_path / "g.md"), "-m", "ana's rule", "--project", project),
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    def tuned(*extra):
        run = subprocess.run(cli_command("tune", str(tmp_path / "c.yaml"), str(tmp_path / "dev.csv"), "--shots", "0", "--calibrations", "none",
                                         "--project", project, "--out", str(tmp_path / "t.yaml"), "--json", *extra), env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)

    assert tuned()["best"]["accuracy"] < 1.0
    report = tuned("--guideline", "HEAD")
    assert report["best"]["accuracy"] == 1.0 and report["model_calls"] == 36
    assert "'dreadful' means negative." in yaml.safe_load((tmp_path / "t.yaml").read_text())["guidelines"]


def test_errors_cluster_by_confusion_single_confusions_by_their_gold_label_and_carry_a_theme():
    from labelmill.strategies.refine.run import cluster_errors

    gold = ["card_arrival", "card_arrival", "card_arrival", "card_arrival", "top_up", "top_up", "top_up", "pin", "pin"]
    said = ["card_linking", "card_linking", "pin", "top_up", "card_arrival", "pin", "top_up", "pin", "top_up"]
    errors = [i for i, (g, p) in enumerate(zip(gold, said)) if g != p]  # the row labeled right (6, 7) is no error
    why = {0: "The customer asks when the delivery of the new card arrives.", 1: "It is about delivery: when will it arrive.",
           2: "The card delivery is late.", 3: "The text asks about delivery."}
    clusters = cluster_errors(gold, said, errors, why, limit=5)
    # card_arrival -> card_linking twice is its own cluster; its single pin and top_up errors fold into "card_arrival, labeled as other labels"
    assert [(c.gold, c.predicted, c.members) for c in clusters] == [
        ("card_arrival", ["card_linking"], [0, 1]), ("card_arrival", ["pin", "top_up"], [2, 3]), ("top_up", ["card_arrival", "pin"], [4, 5]),
        ("pin", ["top_up"], [8])]  # a one-error cluster only while there is room for every cluster
    assert clusters[0].theme == ["delivery"] and "explanations citing delivery" in clusters[0].describe()
    assert clusters[1].describe().startswith("2 search errors (card_arrival labeled pin or top_up)")
    assert clusters[2].theme == []  # no explanations, no theme
    assert [c.members for c in cluster_errors(gold, said, errors, why, limit=3)] == [[0, 1], [2, 3], [4, 5]]


def test_max_candidates_caps_the_guidelines_scored_per_round(tmp_path):
    import pandas as pd

    from labelmill.strategies.refine.run import refine

    config = movie_config([[r"These texts are (\w+), but[\s\S]*?(dreadful)", "Rule: '{1}' means {0}."]])
    capped = refine(config, pd.DataFrame(movie_rows()), project=tmp_path / "p.db", rounds=1, max_candidates=1)
    assert len(capped.rounds[0].candidates) == 1 and capped.projection["label_calls"] == 18 + 18 + 1 * 18 + 3 * 18
    assert capped.rounds[0].accepted is not None  # the one candidate scored is the largest cluster's rule


def test_with_room_under_the_cap_one_big_confusion_splits_by_what_its_explanations_say():
    from labelmill.strategies.refine.run import cluster_errors

    gold, said = ["toxic"] * 8 + ["not toxic"], ["not toxic"] * 8 + ["not toxic"]
    why = {0: "It calls the reader a stupid idiot.", 1: "Calling someone an idiot is an insult.", 2: "The insult 'stupid idiot' is rude.",
           3: "It threatens to hurt the writer.", 4: "A threat of violence against a person.", 5: "It threatens violence.",
           6: "An insult: idiot."}  # row 7 has no explanation
    clusters = cluster_errors(gold, said, list(range(8)), why, limit=3)
    assert len(clusters) == 2 and sorted(m for c in clusters for m in c.members) == list(range(8))
    insults, threats = sorted(clusters, key=lambda c: 0 in c.members)[::-1]
    assert insults.members == [0, 1, 2, 6, 7] and threats.members == [3, 4, 5]  # the unexplained row stays with the larger part
    assert "idiot" in insults.theme and any(w.startswith("threat") for w in threats.theme)
    assert [c.members for c in cluster_errors(gold, said, list(range(8)), why, limit=1)] == [list(range(8))]  # no room: no split


def test_refine_review_waits_for_people_then_scores_what_they_kept(tmp_path):
    """--review: the proposals go to the store as pending and the loop stops; people decide (the review
    app's guideline page calls Proposals.decide); the rerun proposes the same edits from the cache and
    carries out the decisions: the edited rule is scored, accepted on held-out rows and authored by its editor."""
    import pandas as pd

    from labelmill.store import Store
    from labelmill.strategies.refine.run import refine
    from labelmill.strategies.refine.proposals import Proposals, ReviewDecisions
    from labelmill.strategies.refine.versions import GuidelineVersions

    config = movie_config([[r"These texts are (\w+), but[\s\S]*?(dreadful)", "Rule: '{1}' means {0}."]])
    project = tmp_path / "p.db"
    first = refine(config, pd.DataFrame(movie_rows()), project=project, rounds=2, decide=ReviewDecisions(project, "movies"))
    assert first.stopped == "review" and first.rounds[0].candidates == [] and first.rounds[0].accepted is None
    with Store(project) as store:
        found = Proposals(store, "movies").list()
        assert {p.kind for p in found} == {"add_rule", "define_label"} and all(p.status == "pending" for p in found)
        rule = next(p for p in found if p.kind == "add_rule")
        assert rule.text == "'dreadful' means negative." and "search errors (negative labeled positive)" in rule.evidence
        with pytest.raises(Exception, match="needs the new wording"):
            Proposals(store, "movies").decide(rule.key, "edit", "ana", "  ")
        Proposals(store, "movies").decide(rule.key, "edit", "ana", "'dreadful' means negative, whatever else the review says.")
        for definition in [p for p in found if p.kind == "define_label"]:  # the negative label's, and the narrower positive
            Proposals(store, "movies").decide(definition.key, "reject", "ben")
        assert GuidelineVersions(store, "movies").log()[0].author == "config"  # nothing committed while people decide
    again = refine(config, pd.DataFrame(movie_rows()), project=project, rounds=1, decide=ReviewDecisions(project, "movies"))
    assert again.stopped is None and again.rounds[0].accepted is not None
    assert [c["edits"] for c in again.rounds[0].candidates] == [["add rule: 'dreadful' means negative, whatever else the review says."]]
    with Store(project) as store:
        top = GuidelineVersions(store, "movies").log()[0]
    assert top.author == "ana" and "+1. 'dreadful' means negative, whatever else the review says." in top.diff and top.heldout["accuracy"] == 1.0


def test_a_guideline_with_no_definitions_or_rules_prompts_exactly_as_the_config():
    """The loop's starting figures are the config's own: no second copy of the label list in the prompt
    (a second list of 77 labels is a long, different prompt)."""
    from labelmill.config import load_config
    from labelmill.strategies.refine.run import _with_guideline
    from labelmill.tasks import make_task

    cfg = load_config({"task": "classification", "name": "x", "labels": ["World", {"name": "Sports", "description": "games and athletes"}],
                       "guidelines": "Classify the topic.", "model": {"backend": "fake"}})
    bare = cfg.model_copy(update={"labels": [cfg.labels[0], cfg.labels[1].model_copy(update={"description": None})]})
    assert make_task(_with_guideline(bare, Guideline.from_config(bare))).system_prompt() == make_task(bare).system_prompt()
    prompt = make_task(_with_guideline(cfg, Guideline.from_config(cfg))).system_prompt()
    assert prompt.count("- World") == 1 and "Label definitions:\n- Sports: games and athletes" in prompt


def test_a_label_said_far_too_often_gets_a_narrower_definition(tmp_path):
    """The fake labeler answers its first label, positive, when no word votes (a small model's favourite
    label); the dull and dreadful rows are negative. The loop finds positive said twice as often as it is
    right and asks the proposer to narrow its definition; the narrower definition fixes both groups."""
    import pandas as pd

    from labelmill.strategies.refine.run import over_predicted, refine

    gold = ["negative", "negative", "negative", "positive", "negative"]
    said = ["positive", "positive", "positive", "positive", "negative"]
    assert over_predicted(gold, said, [0, 1, 2]) == [("positive", [0, 1, 2])]
    assert over_predicted(gold, said, [0, 1]) == []  # two errors are no pattern
    assert over_predicted(["positive"] * 4 + ["negative"] * 3, ["positive"] * 7, [4, 5, 6]) == []  # said 7 times, 4 rows have it: not twice

    rows = [r for n in range(8) for r in ({"text": f"a dull film {n}", "label": "negative"}, {"text": f"a dreadful film {n}", "label": "negative"},
                                          {"text": f"a good film {n}", "label": "positive"})]
    narrower = [r"said (\w+) for these texts, which are not", "A {0} review praises the film; 'dull' means negative; 'dreadful' means negative."]
    result = refine(movie_config([narrower]), pd.DataFrame(rows), project=tmp_path / "p.db", rounds=1, edits=("define_label",))
    first = result.rounds[0]
    over = [g for g in first.groups if g.get("over_predicted")]
    assert over and over[0]["over_predicted"] == "positive" and over[0]["errors"] == first.errors
    assert first.accepted and first.heldout_after == 1.0 > first.heldout_before
    assert result.final.labels["positive"].startswith("A positive review praises the film")
    from labelmill.store import Store
    from labelmill.strategies.refine.versions import GuidelineVersions

    with Store(tmp_path / "p.db") as store:
        top = GuidelineVersions(store, "movies").log()[0]
    assert "define positive" in top.rationale and "positive said for negative" in top.rationale


def test_rules_and_definitions_come_after_the_task_s_label_list(tmp_path):
    """A small labeler reads a rule placed just before the label list as a reason to say the label it
    names; the guideline's definitions and rules follow the list, and a task without a label list gets no
    placeholder."""
    from labelmill.config import load_config
    from labelmill.tasks import make_task

    (tmp_path / "g.md").write_text(DOC)
    cfg = load_config({"task": "classification", "name": "agnews-topics", "labels": ["World", "Sports", "Business", "Sci/Tech"],
                       "guidelines_file": str(tmp_path / "g.md"), "model": {"backend": "fake"}})
    system = make_task(cfg).system_prompt()
    assert system.index("Classify the topic") < system.index("Labels:\n- World\n- Sports\n- Business\n- Sci/Tech") < system.index("Label definitions:") \
        < system.index("Rules:\n1. A company's product launch") < system.index("Answer with the label only.")
    assert system.count("Labels:") == 1 and "{labels}" not in system
    extraction = load_config({"task": "extraction", "attributes": [{"name": "company"}], "guidelines_file": str(tmp_path / "g.md"),
                              "model": {"backend": "fake"}})
    assert "{labels}" not in extraction.guidelines and "Rules:\n1. A company's product launch" in extraction.guidelines
    from labelmill.strategies.refine.run import _with_guideline, readable

    shown = readable(_with_guideline(cfg, Guideline.parse(DOC)))  # what the explainer and the proposer read: the list filled in
    assert "{labels}" not in shown and "Labels:\n- World\n- Sports" in shown and shown in system
    own = Guideline("t", "Pick one of:\n{labels}\nthen stop.", {}, [Rule("Be brief.")])
    assert own.prompt_text().count("{labels}") == 1  # the introduction places the list itself


def test_edits_that_each_help_are_scored_together_and_a_rule_naming_the_wrong_label_is_dropped(tmp_path):
    """Two confusions (dreadful rows said positive, meh rows said positive), each fixed by its own rule:
    each rule alone helps, the two together fix both and are what is accepted. A third rule, proposed for
    the meh rows' cluster, points at the label the labeler already said; it never reaches the candidates."""
    import pandas as pd

    from labelmill.strategies.refine.run import names_label, refine

    assert not names_label("All texts that mention the Cold War should be labeled as Sports.", "World")
    assert names_label("A message about a card that never came is card_arrival.", "card_arrival")
    assert names_label("Questions about when a card arrives are card arrival.", "card_arrival") and names_label("is Sci/Tech.", "Sci/Tech")
    rows = [r for n in range(8) for r in ({"text": f"a dreadful film {n}", "label": "negative"}, {"text": f"a meh film {n}", "label": "neutral"},
                                          {"text": f"a good film {n}", "label": "positive"}, {"text": f"a bad film {n}", "label": "negative"})]
    replies = [[r"These texts are (\w+), but[\s\S]*?(dreadful)", "Rule: '{1}' means {0}."],
               [r"These texts are neutral, but[\s\S]*?(meh)", "Rule: '{0}' films should be labeled as positive."]]
    config = movie_config(replies, labels=["positive", "negative", "neutral"])
    first = refine(config, pd.DataFrame(rows), project=tmp_path / "p.db", rounds=1, edits=("add_rule",)).rounds[0]
    assert [c["edits"] for c in first.candidates] == [["add rule: 'dreadful' means negative."]]  # the wrong-label rule is gone
    assert not any("rule" in g for g in first.groups if g["gold"] == "neutral")

    replies[1] = [r"These texts are (\w+), but[\s\S]*?(meh)", "Rule: '{1}' means {0}."]
    config = movie_config(replies, labels=["positive", "negative", "neutral"])
    # the definitions (the fake proposer's default reply) change nothing: they stay out of the combination
    result = refine(config, pd.DataFrame(rows), project=tmp_path / "q.db", rounds=1, edits=("add_rule", "define_label"))
    first = result.rounds[0]
    alone = [c for c in first.candidates if len(c["edits"]) == 1]
    assert len(alone) >= 4 and any(c["edits"][0].startswith("define") for c in alone)
    assert all(first.search_before < c["search"] < 1.0 for c in alone if c["edits"][0].startswith("add rule"))
    assert first.candidates[-1]["edits"] == ["add rule: 'dreadful' means negative.", "add rule: 'meh' means neutral."]
    assert first.candidates[-1]["search"] == 1.0 and first.accepted and first.heldout_after == 1.0
    assert [r.text for r in result.final.rules] == ["'dreadful' means negative.", "'meh' means neutral."]
    # under a cap the last slot is the combination only when two edits already helped
    capped = refine(config, pd.DataFrame(rows), project=tmp_path / "r.db", rounds=1, edits=("add_rule",), max_candidates=2).rounds[0]
    assert [len(c["edits"]) for c in capped.candidates] == [1, 1]
    room = refine(config, pd.DataFrame(rows), project=tmp_path / "s.db", rounds=1, edits=("add_rule",), max_candidates=3).rounds[0]
    assert [len(c["edits"]) for c in room.candidates] == [1, 1, 2] and room.candidates[-1]["search"] == 1.0


def test_a_large_cluster_gets_a_second_rule_draft_scored_after_the_first_drafts(tmp_path):
    """Fifteen dreadful rows said positive on the search half: the proposer is asked twice, the second time
    with other rows of the cluster and for their subject; both drafts are candidates, the first drafts first."""
    import pandas as pd

    from labelmill.strategies.refine.run import refine

    replies = [[r"These texts are (\w+), but[\s\S]*What are these texts about\?", "Rule: Films called 'dreadful' are {0}; 'dreadful' means {0}, always."],
               [r"These texts are (\w+), but[\s\S]*?(dreadful)", "Rule: '{1}' means {0}."]]
    result = refine(movie_config(replies), pd.DataFrame(movie_rows(30)), project=tmp_path / "p.db", rounds=1, edits=("add_rule",))
    first = result.rounds[0]
    assert first.groups[0]["errors"] >= 9 and first.groups[0]["second_rule"].startswith("Films called 'dreadful' are negative")
    assert [c["edits"] for c in first.candidates][:2] == [["add rule: 'dreadful' means negative."],
                                                          ["add rule: Films called 'dreadful' are negative; 'dreadful' means negative, always."]]
    assert first.accepted and result.final.rules[0].text == "'dreadful' means negative."  # equal figures: the shorter rule wins on the penalty
    small = refine(movie_config(replies), pd.DataFrame(movie_rows(12)), project=tmp_path / "q.db", rounds=1, edits=("add_rule",)).rounds[0]
    assert "second_rule" not in small.groups[0]  # six errors: one draft


def test_refine_keeps_the_guideline_when_a_rule_helps_the_search_half_but_not_the_held_out_half(tmp_path):
    """Over the search half 'dreadful' means negative; over the held-out half the same word comes with
    positive gold labels. The rule raises search accuracy and lowers held-out accuracy: not accepted, and
    the guideline stays the config's."""
    import numpy as np
    import pandas as pd

    from labelmill.store import Store
    from labelmill.strategies.refine.run import refine
    from labelmill.strategies.refine.versions import GuidelineVersions

    n = 36
    held_out = set(np.random.default_rng(0).permutation(n)[n // 2:].tolist())  # the split refine makes with seed 0, heldout_share 0.5
    rows = []
    for i in range(n):
        if i % 3 == 0:
            rows.append({"text": f"a dreadful film number {i}", "label": "positive" if i in held_out else "negative"})
        else:
            rows.append({"text": f"a {'good' if i % 3 == 1 else 'bad'} film number {i}", "label": "positive" if i % 3 == 1 else "negative"})
    config = {"task": "classification", "name": "movies", "labels": ["positive", "negative"], "guidelines": "Classify the sentiment.",
              "input_template": "{text}", "gold_column": "label", "examples": {"k": 0},
              "model": {"backend": "fake", "params": {"keywords": {"positive": ["good"], "negative": ["bad"]}, "rule_words": True,
                                                        "replies": [[r"These texts are (\w+), but[\s\S]*?(dreadful)", "Rule: '{1}' means {0}."]],
                                                        "default_reply": "the wording shows it."}}}
    result = refine(config, pd.DataFrame(rows), project=tmp_path / "p.db", rounds=1, seed=0, heldout_share=0.5)
    first = result.rounds[0]
    assert first.errors > 0 and first.candidates and first.candidates[0]["search"] == 1.0 > first.search_before
    assert first.heldout_after < first.heldout_before
    assert first.accepted is None
    assert "dreadful" not in result.final.prompt_text()
    with Store(tmp_path / "p.db") as store:
        assert [v.author for v in GuidelineVersions(store, "movies").log()] == ["config"]


def test_guideline_versions_by_hand_heads_prefixes_history_and_refusals(tmp_path):
    """Versions written by hand on a real store: HEAD~N in any case, unique and ambiguous prefixes, a proposal
    stored without moving the head, figures read back as written, a blank rationale refused."""
    from labelmill.errors import ConfigError
    from labelmill.store import Store
    from labelmill.strategies.refine.versions import GuidelineVersions, version_id

    with Store(tmp_path / "p.db") as store:
        versions = GuidelineVersions(store, "movies")
        with pytest.raises(ConfigError, match="no versions yet"):
            versions.get("HEAD")
        with pytest.raises(ConfigError, match="needs a rationale"):
            versions.commit("text", rationale="   ", author="me")
        one = versions.commit("Be kind.\n", rationale="start", author="me", dev={"accuracy": 0.5})
        two = versions.commit("Be kind.\nBe brief.\n", rationale="brief", author="me")
        assert two.parent == one.id and "+Be brief." in two.diff and "-Be kind." not in two.diff
        assert one.dev == {"accuracy": 0.5} and one.heldout is None and two.dev is None
        side = versions.commit("Be kind.\nBe long.\n", rationale="proposal", author="model", move_head=False)
        assert versions.head_id() == two.id and side.parent == two.id  # stored, head unmoved
        assert versions.get("head~1").id == one.id and versions.get("HEAD~0").id == two.id and versions.get("Head").id == two.id
        with pytest.raises(ConfigError, match="shorter than that"):
            versions.get("HEAD~2")
        assert versions.get(one.id[:5]).id == one.id  # a unique prefix
        assert versions.get(one.id[3:], missing_ok=True) is None  # an id's middle is no prefix
        with pytest.raises(ConfigError, match="more than one"):
            versions.get("", missing_ok=True)  # ambiguous (every id starts with "") is an error even when missing is fine
        assert version_id("Be kind.\n") == one.id and [v.id for v in versions.log()] == [two.id, one.id]
        assert versions.commit("Be kind.\n", rationale="again", author="me").id == one.id and versions.head_id() == one.id


def test_proposals_by_hand_keys_decisions_and_refusals(tmp_path):
    """Proposals on a real store: the key tells bases apart, a listing in the order written and by status, an
    edit's wording kept (an acceptance's not), a long or unknown decision and an unknown key refused."""
    from labelmill.errors import InputDataError
    from labelmill.store import Store
    from labelmill.strategies.refine.proposals import Proposals
    from labelmill.strategies.refine.run import Edit

    with Store(tmp_path / "p.db") as store:
        props = Proposals(store, "movies")
        rule = Edit("add_rule", "Sarcasm is negative.", evidence="3 errors", author="model")
        first = props.record("v1", rule)
        second = props.record("v2", rule)  # the same edit on another version is another proposal
        third = props.record("v2", Edit("define_label", "Praise.", target="positive", author="model"))
        assert first.key != second.key and props.record("v1", rule).key == first.key and len(props.list()) == 3
        assert [p.key for p in props.list()] == [first.key, second.key, third.key]
        with pytest.raises(InputDataError, match="unknown action 'approve'"):
            props.decide(first.key, "approve", "ann")
        with pytest.raises(InputDataError, match="no proposal 'nope'"):
            props.decide("nope", "accept", "ann")
        with pytest.raises(InputDataError, match="at most 1,000"):
            props.decide(first.key, "edit", "ann", "x" * 1001)
        assert props.decide(first.key, "edit", "ann", "y" * 1000).decided_text == "y" * 1000  # the limit itself is fine
        accepted = props.decide(second.key, "accept", "bob", "ignored wording")
        assert (accepted.status, accepted.decided_text, accepted.decided_by) == ("accepted", None, "bob")
        assert [p.key for p in props.list("pending")] == [third.key] and [p.key for p in props.list("edited")] == [first.key]
        assert Proposals(store, "other").list() == []
