"""labelmill synth summaries on a fake writer/restorer through the backend interface: the template search
prefers summaries that restore more of the source, but not by copying it (the compression penalty)."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from labelmill.backends.fake import FakeBackend
from labelmill.config import ModelSpec
from labelmill.errors import ConfigError, InputDataError
from labelmill.strategies.synth.summaries import synth_summaries
from labelmill.tasks.generation import clean_generation, rouge_l
from labelmill.types import Generation, ScoreResult

class Summarizer(FakeBackend):
    """Writes 4 words: the initial instruction 'A text about' + the first word, the first variant the first 4
    words; the second variant copies 30 words, the third keeps 2. It restores as many target words as the
    summary holds."""

    def generate(self, prompts, *, max_tokens, temperature, seed, schema=None):
        self._log_calls(prompts)
        out = []
        for p in prompts:
            words = p.user.split()
            text = (" ".join(words[:4]) if "one sentence that names" in p.system else " ".join(words[:30]) if "who or what" in p.system
                    else " ".join(words[:2]) if "headline" in p.system else "A text about " + words[0])
            out.append(Generation("Summary: " + text, [-0.1] * 4))
        return out

    def score(self, prompts, candidates):
        self._log_calls(prompts)
        out = []
        for p in prompts:
            summary = set(re.search(r"Summary: (.*)\n\nOriginal", p.user, re.S).group(1).split())
            target = candidates[0].split()
            out.append(ScoreResult([-2.0 * sum(w not in summary for w in target) - 0.5 * len(target)]))
        return out


def rows(n: int) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"Topic{i} " + " ".join(f"w{i}_{j}" for j in range(40)) for i in range(n)]})


def config() -> dict:
    return {"task": "generation", "name": "summaries", "guidelines": "Summarize the text in one sentence.", "input_template": "{text}",
            "model": {"backend": "fake", "name": "summarizer"}}


def test_the_search_beats_the_initial_template_without_copying(tmp_path):
    backend = Summarizer(ModelSpec(backend="fake", name="summarizer"))
    result = synth_summaries(config(), rows(30), search_rows=10, project=tmp_path / "p.db", backend=backend, output=tmp_path / "s.csv")
    f = result.figures
    # 'who or what' copies 30 words: it restores the most but compresses far less, so it cannot win; the first
    # variant writes as many words as the initial one, all of them from the source (its one-demo form writes the same)
    assert f["search"]["variant 2"]["restore_score"] > f["search"]["variant 1"]["restore_score"] and f["search"]["variant 2"]["compression"] > 0.7
    assert f["chosen_template"] == "variant 1"
    assert f["restore_score_searched"] > f["restore_score_initial"] > 0 and f["compression_searched"] == f["compression_initial"]
    assert f["held_out_rows"] == 20 and f["completion_searched"] == 1.0
    out = pd.read_csv(tmp_path / "s.csv")
    assert out["summary"][0].split() == out["text"][0].split()[:4] and out["restore_score"].notna().all()


def test_bad_input_is_a_clear_error(tmp_path):
    backend = Summarizer(ModelSpec(backend="fake", name="summarizer"))
    with pytest.raises(InputDataError, match="distinct rows"):
        synth_summaries(config(), pd.concat([rows(5)] * 10), search_rows=10, project=tmp_path / "p.db", backend=backend)
    with pytest.raises(ConfigError, match="generation"):
        synth_summaries({**config(), "task": "classification", "labels": ["a", "b"]}, rows(30), project=tmp_path / "p.db", backend=backend)


def test_generation_helpers():
    assert clean_generation('Summary: "The cat sat."\n\nMore') == "The cat sat."
    assert rouge_l("the cat sat on the mat", "the cat sat") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert rouge_l("", "x") == 0.0 and math.isclose(rouge_l("a b", "a b"), 1.0)


def test_the_cli_says_what_it_needs(tmp_path):
    import json
    import subprocess

    from conftest import child_env, cli_command

    (tmp_path / "c.json").write_text(json.dumps(config()))
    rows(8).to_csv(tmp_path / "rows.csv", index=False)
    done = subprocess.run(cli_command("synth", "summaries", "c.json", "rows.csv", "--search-rows", "5"), cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "distinct rows" in done.stdout + done.stderr


def test_restoring_the_whole_source_or_only_its_start(tmp_path):
    """The restorer is asked for the first `restore_words` words, or for every word of the source."""
    seen: list[int] = []

    class Counting(Summarizer):
        def score(self, prompts, candidates):
            seen.append(len(candidates[0].split()))
            return super().score(prompts, candidates)

    backend = Counting(ModelSpec(backend="fake", name="summarizer"))
    synth_summaries(config(), rows(30), search_rows=10, project=tmp_path / "a.db", backend=backend, restore_words=20, one_shot=False)
    assert set(seen) == {20}
    seen.clear()
    whole = synth_summaries(config(), rows(30), search_rows=10, project=tmp_path / "b.db", backend=backend, restore_words=None, one_shot=False)
    assert set(seen) == {41} and whole.figures["restore_score_searched"] > whole.figures["restore_score_initial"]
