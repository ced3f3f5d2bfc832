"""The core's seam for requests that belong to no row (`ask_texts`, `ask_scores`) on the fake backend through
the backend registry: texts per prompt and per seed, empty and failed answers as None, batches with a notice,
the store's cache (a rerun asks nothing), scores in candidate order, and a scoreless answer refused."""

from __future__ import annotations

import pytest
from conftest import fake_config

from labelmill.config import load_config
from labelmill.core import ask_scores, ask_texts
from labelmill.errors import InputDataError
from labelmill.types import Prompt


def _cfg(log, **params):
    config = fake_config()
    config["model"]["params"] = {**config["model"]["params"], "call_log": str(log), **params}
    return load_config(config)


def _prompt(user: str) -> Prompt:
    return Prompt("Classify.\n- positive\n- negative", (), user)


def test_ask_texts_answers_each_prompt_once_per_seed_and_reads_an_empty_answer_as_none(tmp_path):
    log = tmp_path / "calls.log"
    cfg = _cfg(log, replies=[["^say (\\w+)$", "{0}"], ["^blank$", "   "]])
    prompts = [_prompt("say hello"), _prompt("blank"), _prompt("say bye"), _prompt("say hello")]
    seen = []
    out = ask_texts(cfg, prompts, {"kind": "t", "batch": 2}, project=tmp_path / "p.db", on_event=seen.append)
    assert out == ["hello", None, "bye", "hello"]
    assert len(log.read_text().splitlines()) == 3  # the same prompt twice is asked once
    assert [e.message for e in seen] == ["t: 1 of 4 written", "t: 3 of 4 written"]  # a notice per batch
    # two seeds for one prompt: two requests; a rerun asks nothing new
    again = ask_texts(cfg, [_prompt("say hello"), _prompt("say hello")], {"kind": "t", "seeds": [1, 2]}, project=tmp_path / "p.db")
    assert again == ["hello", "hello"] and len(log.read_text().splitlines()) == 5
    quiet = []
    assert ask_texts(cfg, prompts, {"kind": "t"}, project=tmp_path / "p.db", on_event=quiet.append) == out and len(log.read_text().splitlines()) == 5
    assert quiet == []  # one batch: no progress notice
    # another kind is another request
    ask_texts(cfg, prompts[:1], {"kind": "u"}, project=tmp_path / "p.db")
    assert len(log.read_text().splitlines()) == 6


def test_ask_texts_samples_each_seed_apart_at_a_temperature(tmp_path):
    cfg = _cfg(tmp_path / "calls.log", keywords={"positive": ["x"], "negative": ["x"]})
    prompt = _prompt("x")
    out = ask_texts(cfg, [prompt] * 12, {"kind": "t", "temperature": 5.0, "seeds": list(range(12))}, project=tmp_path / "p.db")
    assert set(out) == {"positive", "negative"}  # a tie sampled 12 times, once per seed


def test_ask_scores_keeps_the_candidates_order_and_refuses_an_answer_without_scores(tmp_path):
    log = tmp_path / "calls.log"
    cfg = _cfg(log)
    prompts = [_prompt("a good film"), _prompt("a bad film"), _prompt("good")]
    scores = ask_scores(cfg, prompts, ("positive", "negative"), kind="s", project=tmp_path / "p.db", batch=2)
    assert scores.shape == (3, 2)
    assert scores[0, 0] > scores[0, 1] and scores[1, 1] > scores[1, 0]
    flipped = ask_scores(cfg, prompts, ("negative", "positive"), kind="s", project=tmp_path / "p.db")
    assert flipped[0, 1] > flipped[0, 0]
    asked = len(log.read_text().splitlines())
    assert (ask_scores(cfg, prompts, ("positive", "negative"), kind="s", project=tmp_path / "p.db") == scores).all()
    assert len(log.read_text().splitlines()) == asked  # cached

    from labelmill.backends import make_backend
    from labelmill.types import ScoreResult

    backend = make_backend(cfg.model)
    backend.score = lambda prompts, candidates: [ScoreResult([], error="server_error") for _ in prompts]
    with pytest.raises(InputDataError, match=r"no scores \(server_error\)"):
        ask_scores(cfg, [_prompt("fresh row")], ("positive", "negative"), kind="s2", project=tmp_path / "p.db", backend=backend)
    backend.score = lambda prompts, candidates: [ScoreResult([]) for _ in prompts]  # no error, and no scores either
    with pytest.raises(InputDataError, match=r"no scores \(empty\)"):
        ask_scores(cfg, [_prompt("another row")], ("positive", "negative"), kind="s3", project=tmp_path / "p.db", backend=backend)
