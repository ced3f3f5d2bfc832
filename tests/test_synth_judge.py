"""labelmill judge on fake judges that go through the backend interface: one reads the answers (and is
fooled by nothing), one always prefers the answer shown first; agreement with people, kappa, the cache."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from labelmill.backends.fake import FakeBackend
from labelmill.config import ModelSpec
from labelmill.errors import InputDataError
from labelmill.numeric.agreement import cohen_kappa
from labelmill.strategies.synth.judge import judge_config, judge_pairs, judge_scores
from labelmill.types import ScoreResult

PAIRS = pd.DataFrame({
    "context": ["Paris is the capital of France."] * 4,
    "question": ["What is the capital of France?"] * 4,
    "first": ["Paris", "Lyon", "Paris", "France"],
    "second": ["Lyon", "Paris", "France", "Paris"],
    "human": ["first", "second", "a", "B"],
})


class ReadingJudge(FakeBackend):
    """Prefers the answer that names Paris; scores a 1-5 rubric by how many words the answer shares with the reference."""

    def score(self, prompts, candidates):
        self._log_calls(prompts)
        out = []
        for p in prompts:
            if list(candidates) == ["yes", "no"]:
                answer = re.search(r"Proposed answer: (.*)\n\n", p.user).group(1)
                yes = 0.8 if answer == "Paris" else 0.3
                out.append(ScoreResult([math.log(yes), math.log(1 - yes)]))
            elif list(candidates) == ["A", "B"]:
                a = re.search(r"Answer A: (.*)\n\nAnswer B", p.user, re.S).group(1)
                good = 0 if "Paris" in a else 1
                out.append(ScoreResult([math.log(0.9) if i == good else math.log(0.1) for i in range(2)]))
            else:
                answer = re.search(r"Answer to score: (.*)\n", p.user).group(1)
                digit = 5 if "Paris" in answer else 1
                out.append(ScoreResult([0.0 if int(c) == digit else -3.0 for c in candidates]))
        return out


class FirstJudge(FakeBackend):
    def score(self, prompts, candidates):
        self._log_calls(prompts)
        return [ScoreResult([math.log(0.7), math.log(0.3)]) for _ in prompts]


def backend(cls, log=None):
    return cls(ModelSpec(backend="fake", name="judge", params={"call_log": str(log)} if log else {}))


def test_both_orders_agree_for_a_judge_that_reads(tmp_path):
    log = tmp_path / "calls.log"
    result = judge_pairs(PAIRS, project=tmp_path / "p.db", backend=backend(ReadingJudge, log), output=tmp_path / "judged.csv")
    assert result.frame["judge_verdict"].tolist() == ["first", "second", "first", "second"]
    f = result.figures
    assert f["flip_rate"] == 0.0 and f["position_consistency"] == 1.0 and f["accuracy"] == 1.0 and f["kappa"] == 1.0
    assert result.frame["judge_p_first"].tolist()[0] == pytest.approx(0.9)
    assert len(log.read_text().splitlines()) == 4  # 4 pairs x 2 orders, but row 2 is row 1 swapped: each prompt is asked once
    judge_pairs(PAIRS, project=tmp_path / "p.db", backend=backend(ReadingJudge, log))
    assert len(log.read_text().splitlines()) == 4  # a rerun asks nothing


def test_a_position_biased_judge_flips_every_pair_into_a_tie(tmp_path):
    result = judge_pairs(PAIRS, project=tmp_path / "p.db", backend=backend(FirstJudge))
    f = result.figures
    assert f["flip_rate"] == 1.0 and f["ties"] == 1.0 and f["accuracy"] == 0.0 and f["accuracy_on_decided"] is None
    assert f["accuracy_one_order"] == 0.5  # judged in one order only it looks like a coin, not like a broken judge
    assert f["accuracy_mean_of_orders"] == 0.5


def test_pointwise_mode_asks_each_answer_alone_and_cannot_flip(tmp_path):
    log = tmp_path / "calls.log"
    result = judge_pairs(PAIRS, project=tmp_path / "p.db", backend=backend(ReadingJudge, log), mode="pointwise")
    assert result.frame["judge_verdict"].tolist() == ["first", "second", "first", "second"]
    assert result.frame["judge_p_first"].tolist()[0] == pytest.approx(0.8 / 1.1, abs=1e-3)
    assert result.frame["judge_p_correct_second"].tolist()[0] == pytest.approx(0.3)
    f = result.figures
    assert f["mode"] == "pointwise" and f["flip_rate"] == 0.0 and f["accuracy"] == 1.0
    assert len(log.read_text().splitlines()) == 3  # Paris, Lyon, France: each answer asked once
    prompts = [p for p in log.read_text().splitlines()]
    assert not any("Answer A" in p for p in prompts)
    with pytest.raises(InputDataError, match="unknown mode"):
        judge_pairs(PAIRS, backend=backend(FirstJudge), mode="both")


def test_rubric_scores_and_agreement(tmp_path):
    rows = pd.DataFrame({"question": ["What is the capital of France?"] * 3, "answer": ["Paris", "Lyon", "It is Paris"],
                         "reference": ["Paris"] * 3, "human_score": [5, 1, 4]})
    result = judge_scores(rows, project=tmp_path / "p.db", backend=backend(ReadingJudge))
    assert result.frame["judge_score"].tolist() == [5, 1, 5] and result.figures["accuracy"] == pytest.approx(2 / 3, abs=1e-3)
    assert result.figures["pearson"] > 0.9 and 4.5 < result.frame["judge_expected_score"][0] <= 5


def test_missing_columns_and_kappa():
    with pytest.raises(InputDataError, match="no column 'first'"):
        judge_pairs(PAIRS.drop(columns=["first"]), backend=backend(FirstJudge))
    assert cohen_kappa(["a", "b", "a", "b"], ["a", "b", "a", "b"]) == 1.0
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "b", "a", "b"]) == 0.0
    assert judge_config("qwen2.5-coder-1.5b").model.name == "qwen2.5-coder-1.5b"


def test_the_judge_cli_reads_a_file_and_says_what_is_missing(tmp_path):
    import subprocess

    from conftest import child_env, cli_command

    PAIRS.to_csv(tmp_path / "pairs.csv", index=False)
    done = subprocess.run(cli_command("judge", "pairs", "pairs.csv", "--first", "nope"), cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "no column 'nope'" in done.stderr + done.stdout
    assert "--human" in subprocess.run(cli_command("judge", "pairs", "--help"), cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=120).stdout
