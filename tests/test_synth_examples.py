"""labelmill synth examples on the fake backend: subtopics, the attribute grid, the filters, the
consistency check by the config's own labeler, and a crashed run resuming from the cache."""

from __future__ import annotations

import pandas as pd
import pytest

from labelmill.errors import ConfigError
from labelmill.strategies.synth.examples import clean_example, synth_examples

from conftest import fake_config


def synth_config(call_log: str | None = None) -> dict:
    config = fake_config()
    config["model"]["params"] = {
        "keywords": {"positive": ["great", "fun", "good"], "negative": ["bad", "dull", "boring"]},
        "replies": [
            [r"subtopics that texts labeled \"(\w+)\"", "1. plots, 2. acting, 3. music, {0}"],
            [r"label is \"positive\", about music", "As an AI language model, I cannot write that."],  # a refusal
            [r"label is \"positive\", about (\w+), (\w+)", "Example: \"A great film, the {0} were great and {1}.\""],
            [r"label is \"negative\", about acting", "A great cast, a great film."],  # says the other label
            [r"label is \"negative\", about (\w+), (\w+)", "Text: a boring film, dull {0} and {1} boring."],
        ],
    }
    if call_log:
        config["model"]["params"]["call_log"] = call_log
    return config


def test_examples_per_label_are_filtered_and_checked_by_the_labeler(tmp_path):
    result = synth_examples(synth_config(), per_label=12, project=tmp_path / "p.db", output=tmp_path / "synth.csv")
    frame = pd.read_csv(tmp_path / "synth.csv", keep_default_na=False)
    assert len(frame) == 24 and set(frame.columns) >= {"text", "label", "subtopic", "length", "style", "kept", "removed_by"}
    assert set(frame["subtopic"]) == {"plots", "acting", "music"}  # the label itself is no subtopic
    kept = frame[frame["kept"].astype(str) == "True"]
    assert not kept.empty and kept["text"].is_unique
    assert set(frame[(frame["subtopic"] == "music") & (frame["label"] == "positive")]["removed_by"]) == {"rules"}
    assert set(frame[(frame["subtopic"] == "acting") & (frame["label"] == "negative")]["removed_by"]) <= {"inconsistent", "minhash_duplicate"}
    assert "inconsistent" in set(frame["removed_by"]) and "minhash_duplicate" in set(frame["removed_by"])
    f = result.figures
    removed = sum(f["removed_rules"].values()) + f["removed_minhash"] + f["removed_embedding"] + f["removed_inconsistent"]
    assert f["generated"] == 24 and f["kept"] == len(kept) == 24 - removed
    assert sum(f["kept_per_label"].values()) == f["kept"] and 0 < f["distinct_2"] <= 1 and f["dedup_removed_share"] > 0
    assert all(t.startswith(("A great film", "a boring film")) for t in result.texts)  # 'Example:' and quotes gone


def test_a_rerun_asks_nothing_and_bad_configs_are_clear_errors(tmp_path):
    log = tmp_path / "calls.log"
    synth_examples(synth_config(str(log)), per_label=3, project=tmp_path / "p.db", consistency=False, dedup=False)
    asked = len(log.read_text().splitlines())
    assert asked == 2 + 6  # the subtopic lists, then 3 examples per label
    synth_examples(synth_config(str(log)), per_label=3, project=tmp_path / "p.db", consistency=False, dedup=False)
    assert len(log.read_text().splitlines()) == asked
    config = synth_config()
    config["task"] = "ner"
    with pytest.raises(ConfigError, match="classification"):
        synth_examples(config, project=tmp_path / "p.db")
    config = synth_config()
    config["input_template"] = "{title}: {body}"
    with pytest.raises(ConfigError, match="one text column"):
        synth_examples(config, project=tmp_path / "p.db")


def test_clean_example():
    assert clean_example('Example 2: "Loved it."\n\nHere is another one') == "Loved it."
    assert clean_example("  Review:  so   dull ") == "so dull"


def test_the_cli_writes_examples(tmp_path):
    import json
    import subprocess

    from conftest import child_env, cli_command

    (tmp_path / "c.json").write_text(json.dumps(synth_config()))
    done = subprocess.run(cli_command("synth", "examples", "c.json", "--out", "s.csv", "--per-label", "3", "--no-dedup", "--json"),
                          cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["generated"] == 6 and figures["kept"] == len(pd.read_csv(tmp_path / "s.csv").query("kept"))


def test_the_student_check_drops_examples_the_other_examples_disagree_with(tmp_path):
    """consistency="student": a logistic regression on real MiniLM embeddings of the other folds' examples
    must give each example its intended label back; the 'negative' examples about acting read positive."""
    config = synth_config()
    replies = config["model"]["params"]["replies"]
    # a few negatives (acting, in two of the four styles) written like the positives about plots
    replies[3] = [r"label is \"negative\", about acting, (\w+) [\w ]+ long, in a (?:formal|casual) style", "A great film, the plots were great and {0}."]
    result = synth_examples(config, per_label=24, project=tmp_path / "p.db", output=tmp_path / "s.csv", consistency="student", dedup=False)
    frame = pd.read_csv(tmp_path / "s.csv", keep_default_na=False)
    wrong = frame[(frame["subtopic"] == "acting") & (frame["label"] == "negative")]
    wrong = wrong[wrong["text"].str.startswith("A great film")]
    assert len(wrong) >= 2 and set(wrong["removed_by"]) == {"inconsistent"}
    right = frame[(frame["label"] == "negative") & (frame["subtopic"] != "acting")]
    assert (right["removed_by"] == "").mean() >= 0.9  # the real negatives stay
    assert result.figures["consistency"] == "student" and result.figures["removed_inconsistent"] >= len(wrong)
    with pytest.raises(ConfigError, match="consistency"):
        synth_examples(synth_config(), per_label=2, project=tmp_path / "p.db", consistency="oracle", dedup=False)


def test_chatter_refusals_with_curly_quotes_and_talk_about_the_request_are_not_rows():
    from labelmill.strategies.synth.filters import rule_filter

    assert clean_example("Sure! Here is an example: The market fell on Monday.") == "The market fell on Monday."
    assert clean_example("Sure, it's a fine film. But boring.") == "Sure, it's a fine film. But boring."  # a row may start with "Sure"
    kept = rule_filter(["I\u2019m sorry, but I cannot create a realistic example that meets your request.",
                        "Stocks fell. This example fits the task of classifying business news.", "Fed hikes rates. Label: Business",
                        "The market rose sharply on Monday after the jobs report."])
    assert kept.keep == [3] and kept.removed == {"refusal": 1, "meta": 2}
