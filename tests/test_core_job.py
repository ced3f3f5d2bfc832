"""core.job's Job, part by part, on a fake backend that records what it is asked: the method it chooses, the answer
length and schema it asks with, each follow-up request's length, temperature and seed, the background path of a
server backend, a failed request and a parser that raises, and the missing-column error word for word. Expected
values are written out by hand from the config."""

from __future__ import annotations

import hashlib
from concurrent.futures import Future

import pandas as pd
import pytest
from conftest import fake_config

from labelmill.backends.fake import FakeBackend
from labelmill.config import load_config
from labelmill.core.job import Job, check_columns, content_hash_of
from labelmill.core.reasoning import Call
from labelmill.errors import BackendError, InputDataError
from labelmill.types import ParseFailure, Prompt


class Recorder(FakeBackend):
    """The fake model, keeping each request's kind and options."""

    supports_schema = True

    def __init__(self, spec, *, base_dir=None):
        super().__init__(spec, base_dir=base_dir)
        self.asked: list[tuple] = []

    def score(self, prompts, candidates):
        self.asked.append(("score", len(prompts), list(candidates)))
        return super().score(prompts, candidates)

    def generate(self, prompts, *, max_tokens, temperature, seed, schema=None):
        self.asked.append(("generate", len(prompts), max_tokens, temperature, seed, schema))
        return super().generate(prompts, max_tokens=max_tokens, temperature=temperature, seed=seed, schema=schema)


class Server(Recorder):
    """A backend that works in the background, like the server backends."""

    def submit_generate(self, prompts, *, max_tokens, temperature, seed, schema=None):
        self.asked.append(("submit", len(prompts), max_tokens, temperature, seed, schema))
        future: Future = Future()
        future.set_result(FakeBackend.generate(self, prompts, max_tokens=max_tokens, temperature=temperature, seed=seed, schema=schema))
        return future


class NoScores(Recorder):
    can_score = False


def job(backend=Recorder, **overrides) -> Job:
    config = load_config(fake_config(**overrides))
    return Job(config, backend(config.model))


EXTRACTION = {"task": "extraction", "attributes": [{"name": "city", "description": "the city named"}], "gold_column": None}
SYSTEM = "Labels:\n- positive\n- negative\n"  # the fake generates one of the labels its system prompt lists
PROMPTS = [Prompt(system=SYSTEM, turns=(), user="good fun"), Prompt(system=SYSTEM, turns=(), user="dull")]


def test_auto_scores_a_closed_label_set_and_generates_otherwise():
    scored = job(model={"method": "auto"})
    assert scored.method == "score" and scored.candidates == ["positive", "negative"] and scored.schema is None
    generated = job(NoScores, model={"method": "auto"})
    assert generated.method == "generate" and generated.candidates is None and generated.schema is None
    assert job(model={"method": "generate"}).method == "generate"
    extraction = job(**EXTRACTION, model={"method": "auto"})
    assert extraction.method == "generate" and extraction.schema["properties"]["city"] and extraction.candidates is None


def test_score_is_refused_where_it_cannot_work_and_a_follow_up_task_needs_a_scoring_backend():
    with pytest.raises(BackendError, match="method 'score' needs a closed label set"):
        job(NoScores, model={"method": "score"})
    with pytest.raises(BackendError, match="method 'score' needs a closed label set"):
        job(**EXTRACTION, model={"method": "score"})
    relations = {"task": "relations", "labels": ["Peop", "Org"], "gold_column": None,
                 "relation": {"types": [{"name": "Work_For", "head": ["Peop"], "tail": ["Org"]}]}}
    with pytest.raises(BackendError, match="asks scored questions about its answers; fake cannot score"):
        job(NoScores, **relations, model={"method": "generate"})
    assert job(**relations, model={"method": "generate"}).task.asks_followups  # it can score: no error
    assert job(NoScores, model={"method": "generate"}).method == "generate"  # no follow-ups: no error


def test_the_answer_length_is_the_task_s_own_unless_the_config_sets_one():
    """Classification's 32 tokens, extraction's 128; a config's max_tokens (5, 64) is taken as it is, even below."""
    assert job().max_tokens == 32 and job(**EXTRACTION).max_tokens == 128
    assert job(model={"max_tokens": 5}).max_tokens == 5 and job(**EXTRACTION, model={"max_tokens": 64}).max_tokens == 64


def test_a_job_made_without_a_backend_builds_it_beside_the_config(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("task: classification\nlabels: [positive, negative]\nmodel: {backend: fake, name: keywords}\n")
    made = Job(load_config(path))
    assert isinstance(made.backend, FakeBackend) and made.backend.base_dir == tmp_path


def test_follow_up_requests_carry_their_own_length_temperature_and_seed():
    """explanation_tokens 50, sample_temperature 0.4, model temperature 0.1 and seed 11: the first explanation greedy at
    the model's temperature and seed, the others sampled with seed 11 + path; samples at the answer length."""
    j = job(model={"seed": 11, "temperature": 0.1, "max_tokens": 20}, reasoning={"explanation_tokens": 50, "sample_temperature": 0.4})
    assert j.explain_call(0) == Call("explain", "generate", max_tokens=50, temperature=0.1, seed=11)
    assert j.explain_call(2) == Call("explain", "generate", max_tokens=50, temperature=0.4, seed=13)
    assert j.sample_call(3) == Call("sample", "generate", max_tokens=20, temperature=0.4, seed=14)


def test_the_model_is_asked_with_the_job_s_options():
    scored = job()
    scored.call_model(PROMPTS)
    assert scored.backend.asked == [("score", 2, ["positive", "negative"])]
    gen = job(model={"method": "generate", "seed": 7, "temperature": 0.2, "max_tokens": 9})
    answers = gen.call_model(PROMPTS)
    assert gen.backend.asked == [("generate", 2, 9, 0.2, 7, None)] and [a["text"] for a in answers] == ["positive", "negative"]
    extraction = job(**EXTRACTION)
    extraction.call_model(PROMPTS[:1])
    assert extraction.backend.asked == [("generate", 1, 128, 0.0, 0, extraction.task.schema())]


def test_a_server_backend_starts_in_the_background_and_other_backends_answer_on_the_wait():
    gen = job(Server, model={"method": "generate", "seed": 7, "temperature": 0.2, "max_tokens": 9})
    wait = gen.submit_model(PROMPTS)
    assert gen.backend.asked == [("submit", 2, 9, 0.2, 7, None)]  # started before the wait
    assert [a["text"] for a in wait()] == ["positive", "negative"] and len(gen.backend.asked) == 1
    extraction = job(Server, **EXTRACTION)
    extraction.submit_model(PROMPTS[:1])()
    assert extraction.backend.asked == [("submit", 1, 128, 0.0, 0, extraction.task.schema())]
    scored = job(Server)
    wait = scored.submit_model(PROMPTS)
    assert scored.backend.asked == []  # scoring has no background path: it runs on the wait
    assert len(wait()) == 2 and scored.backend.asked == [("score", 2, ["positive", "negative"])]
    plain = job(model={"method": "generate"})
    wait = plain.submit_model(PROMPTS)
    assert plain.backend.asked == [] and len(wait()) == 2 and plain.backend.asked[0][0] == "generate"


def test_a_follow_up_call_asks_with_its_own_options_and_samples_keep_the_task_s_schema():
    extraction = job(**EXTRACTION)
    extraction.call(Call("verify", "score", ("yes", "no")), PROMPTS)
    extraction.call(Call("sample", "generate", max_tokens=40, temperature=0.7, seed=3), PROMPTS[:1])
    extraction.call(Call("explain", "generate", max_tokens=60, temperature=0.5, seed=4), PROMPTS[:1])
    assert extraction.backend.asked == [("score", 2, ["yes", "no"]), ("generate", 1, 40, 0.7, 3, extraction.task.schema()),
                                        ("generate", 1, 60, 0.5, 4, None)]
    plain = job()
    plain.call(Call("sample", "generate", max_tokens=8, temperature=0.7, seed=3), PROMPTS[:1])
    assert plain.backend.asked == [("generate", 1, 8, 0.7, 3, None)]  # classification has no schema


def test_a_failed_request_and_a_parser_that_raises_are_typed_failures_with_what_was_said():
    j = job(model={"method": "generate"})
    assert j.outcome({"error": "timeout", "error_detail": "no answer in 30 s"}) == ParseFailure("timeout", "", "no answer in 30 s")
    assert j.outcome({"error": "server_error"}) == ParseFailure("server_error", "", "")
    assert j.outcome({"error": "server_error", "error_detail": None}) == ParseFailure("server_error", "", "")

    def broken(generation, row=None):
        raise ValueError("no such span")

    j.task.parse = broken
    said = "x" * 499 + "yz"
    assert j.outcome({"text": said, "token_logprobs": []}) == ParseFailure("parser_error", "x" * 499 + "y", "ValueError: no such span")
    assert j.outcome({"token_logprobs": [], "text": ""}) == ParseFailure("parser_error", "", "ValueError: no such span")
    assert j.outcome({"text": "positive", "token_logprobs": [-0.1]}, method="score").kind == "parser_error"  # not a score result


def test_content_hash_of_is_sha256_of_canonical_json():
    """Keys sorted, text kept as UTF-8 (not escaped): the recipe every run key and cache key in a store was made by."""
    assert content_hash_of({"b": 1, "a": "é"}) == hashlib.sha256('{"a": "é", "b": 1}'.encode()).hexdigest()


def test_a_missing_column_is_named_with_where_it_is_needed_and_the_columns_there_are():
    config = load_config(fake_config(input_template="{title}: {text}"))
    task = Job(config).task
    wide = pd.DataFrame([{f"c{i}": "v" for i in range(14)}])
    with pytest.raises(InputDataError) as missing:
        check_columns(config, task, wide)
    columns = ", ".join(f"c{i}" for i in range(12))
    assert str(missing.value.message) == f"column 'title' (used by input_template) is not in the input; its columns are: {columns}"
    assert missing.value.fix == "rename a column to 'title' or change the config to name the right column"
    with pytest.raises(InputDataError, match=r"column 'text' \(used by input_template\)"):
        check_columns(config, task, pd.DataFrame([{"title": "t"}]))
    check_columns(config, task, pd.DataFrame([{"title": "t", "text": "x"}]))  # nothing missing: no error
    qa = load_config({"task": "qa", "gold_column": None, "input_template": "{question}", "model": {"backend": "fake"}})
    with pytest.raises(InputDataError) as context:
        check_columns(qa, Job(qa).task, pd.DataFrame([{"question": "q"}]))
    assert str(context.value.message) == "column 'context' (needed by the qa task) is not in the input; its columns are: question"


def test_the_cache_key_follows_its_recipe_so_a_store_from_before_is_still_hit():
    """The key is SHA-256 of canonical JSON of the backend's identity, the request's parameters and the messages,
    written out here for each kind of request: a change to the recipe would silently ask every cached prompt again."""
    import json

    keywords = {"positive": ["good", "great", "fun"], "negative": ["bad", "dull", "boring"]}
    identity = {"backend": "fake", "model": "fake-keywords", "sha256": hashlib.sha256(repr(sorted(keywords.items())).encode()).hexdigest()}
    prompt = Prompt(system="Classify.", turns=(("a film", "positive"),), user="a good film")
    messages = [{"role": "system", "content": "Classify."}, {"role": "user", "content": "a film"}, {"role": "assistant", "content": "positive"},
                {"role": "user", "content": "a good film"}]

    def key(params):
        recipe = {"backend": identity, "params": params, "prompt": messages}
        return hashlib.sha256(json.dumps(recipe, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    scored = job()
    assert scored.cache_key(prompt) == key({"method": "score", "keywords": keywords, "candidates": ["positive", "negative"]})
    assert scored.cache_key(prompt, Call("verify", "score", ("yes", "no"))) == key({"method": "score", "candidates": ["yes", "no"], "keywords": keywords})
    assert scored.cache_key(prompt, Call("p_true", "score", ("yes", "no"))) == key(
        {"keywords": keywords, "kind": "p_true", "method": "score", "candidates": ["yes", "no"]})
    sample = Call("sample", "generate", max_tokens=40, temperature=0.7, seed=3)
    generated = {"keywords": keywords, "kind": "sample", "method": "generate", "candidates": [], "max_tokens": 40, "temperature": 0.7, "seed": 3}
    assert job(Recorder, model={"method": "generate"}).cache_key(prompt, sample) == key(generated)  # classification: no schema
    plain = job(Recorder, model={"method": "generate", "max_tokens": 9, "temperature": 0.2, "seed": 7})
    assert plain.cache_key(prompt) == key({"method": "generate", "keywords": keywords, "max_tokens": 9, "temperature": 0.2, "seed": 7})
    for backend, schema in ((Recorder, True), (FakeBackend, False)):  # a schema joins the key only where the backend obeys it
        extraction = job(backend, **EXTRACTION, model={"params": {"keywords": keywords}})
        wanted = {"method": "generate", "keywords": keywords, "max_tokens": 128, "temperature": 0.0, "seed": 0}
        assert extraction.cache_key(prompt) == key({**wanted, **({"schema": extraction.task.schema()} if schema else {})})
        assert extraction.cache_key(prompt, sample) == key({**generated, **({"schema": extraction.task.schema()} if schema else {})})
        assert extraction.cache_key(prompt, Call("explain", "generate", max_tokens=40, temperature=0.7, seed=3)) == key({**generated, "kind": "explain"})
