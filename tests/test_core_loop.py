"""core.loop's Runner, part by part, with the fake backend and a real store: each stored annotation's provenance
worked out by hand (the row's hash, the raw answer, the guideline's hash, tokens, the cached flag, a re-asked row's
signal), the notice for rows with empty text, the cost cap on a local model and on a backend that keeps one, and
the batch size a backend asks for."""

from __future__ import annotations

import hashlib

import pytest

from conftest import ROWS, fake_config
from test_tasks import extraction_config

import labelmill
from labelmill.backends.fake import FakeBackend
from labelmill.config import load_config
from labelmill.core.job import Job
from labelmill.core.loop import Runner
from labelmill.errors import RunStopped
from labelmill.events import BatchDone, Notice, RunStarted
from labelmill.store.db import Store
from labelmill.types import Generation

KEYWORDS = {"positive": ["good", "great", "fun"], "negative": ["bad", "dull", "boring"]}
SYSTEM = "Classify the sentiment.\n\nLabels:\n- positive\n- negative\n\nAnswer with the label only."


def short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stored(path) -> list:
    with Store(path) as store:
        return [list(store.annotations(run["id"])) for run in store.runs()]


def test_a_scored_row_keeps_its_label_as_the_raw_answer_and_its_provenance(tmp_path):
    labelmill.label(fake_config(), ROWS[:2], project=tmp_path / "p.db")
    (first, second), = stored(tmp_path / "p.db")
    assert (first.row_index, first.label, first.raw_answer, first.error, first.error_detail) == (0, "positive", "positive", None, None)
    assert (second.label, second.raw_answer) == ("negative", "negative")
    assert first.row_hash == short("a good and fun film") and second.row_hash == short("bad acting and a dull plot")
    assert first.guidelines_hash == short(SYSTEM) and first.method == "score" and not first.cached
    assert (first.backend, first.model_id) == ("fake", "fake-keywords")
    assert first.model_sha256 == hashlib.sha256(repr(sorted(KEYWORDS.items())).encode()).hexdigest()
    # the fake counts 4 characters a token of the prompt's canonical JSON: [{"role":"system","content":SYSTEM (escaped: 89
    # characters)},{"role":"user","content":"a good and fun film"}], 169 characters
    assert first.prompt_tokens == 42 and first.completion_tokens is None
    assert first.signals.get("reasked") is None and set(first.distribution) == {"positive", "negative"}


def test_a_generated_row_keeps_the_model_s_own_words_and_a_failed_one_its_kind(tmp_path):
    config = fake_config(model={"method": "generate", "params": {"style": "chatty", "keywords": KEYWORDS}})
    labelmill.label(config, ROWS[:1], project=tmp_path / "p.db")
    (row,), = stored(tmp_path / "p.db")
    assert (row.label, row.raw_answer, row.method) == ("positive", "The answer is: Positive.", "generate")
    assert row.completion_tokens == 1 and row.prompt_tokens > 0  # the fake counts the label's one log-probability
    garbage = fake_config(model={"method": "generate", "params": {"garbage_every": 1, "keywords": KEYWORDS}})
    labelmill.label(garbage, ROWS[:1], project=tmp_path / "q.db")
    (failed,), = stored(tmp_path / "q.db")
    assert (failed.label, failed.error, failed.raw_answer, failed.confidence) == (None, "no_label", "I am not sure about this one.", None)
    assert failed.distribution is None and failed.signals in (None, {})


def test_rows_answered_from_the_cache_are_marked_cached(tmp_path):
    labelmill.label(fake_config(), ROWS[:3], project=tmp_path / "p.db")
    again = labelmill.label(fake_config(name="another-run"), ROWS[:3], project=tmp_path / "p.db")
    first, second = stored(tmp_path / "p.db")
    assert [a.cached for a in first] == [False] * 3 and [a.cached for a in second] == [True] * 3
    assert (again.model_rows, again.cached_rows) == (0, 3)


def test_a_re_asked_row_says_so_in_its_signals(tmp_path):
    replies = [["invalid: '(\\w+)' is required", '{{"brand": "Acme", "price": 5, "colour": null}}'], ["acme", '{"price": 5}']]
    labelmill.run(extraction_config(params={"replies": replies}), [{"title": "acme anvil"}, {"title": "sony tv"}], project=tmp_path / "p.db")
    (fixed, plain), = stored(tmp_path / "p.db")
    assert fixed.label == {"brand": "Acme", "price": 5.0, "colour": None} and fixed.signals["reasked"] == 1.0
    assert fixed.raw_answer == '{"brand": "Acme", "price": 5, "colour": null}'  # the re-ask's answer, not the first
    assert plain.error == "invalid_json" and plain.signals == {"reasked": 1.0}  # re-asked, and failed again: said too


def test_rows_with_empty_text_get_one_notice_naming_the_first_five(tmp_path):
    rows = [{"text": t} for t in ["good", "", "  ", "bad", None, "", "\t", "", "fun"]]
    events = []
    labelmill.label(fake_config(gold_column=None), rows, project=tmp_path / "p.db", on_event=events.append)
    notices = [e.message for e in events if isinstance(e, Notice) and "empty text" in e.message]
    assert notices == ["6 rows have empty text (rows 1, 2, 4, 5, 6, ..., from 0): they are labeled anyway; check the input column"]
    events.clear()
    labelmill.label(fake_config(gold_column=None), rows[:3], project=tmp_path / "q.db", on_event=events.append)
    assert [e.message for e in events if isinstance(e, Notice) and "empty text" in e.message] == [
        "2 rows have empty text (rows 1, 2, from 0): they are labeled anyway; check the input column"]
    events.clear()  # nothing left to label: no notice
    labelmill.label(fake_config(gold_column=None), rows[:3], project=tmp_path / "q.db", on_event=events.append)
    assert not [e for e in events if isinstance(e, Notice) and "empty text" in e.message]
    events.clear()  # exactly five: all named, no "..."
    labelmill.label(fake_config(gold_column=None), rows[:7], project=tmp_path / "s.db", on_event=events.append)
    assert [e.message for e in events if isinstance(e, Notice) and "empty text" in e.message] == [
        "5 rows have empty text (rows 1, 2, 4, 5, 6, from 0): they are labeled anyway; check the input column"]
    events.clear()
    labelmill.label(fake_config(gold_column=None), [{"text": "good"}, {"text": "bad"}], project=tmp_path / "r.db", on_event=events.append)
    assert not [e for e in events if isinstance(e, Notice) and "empty text" in e.message]


class Capped(FakeBackend):
    """A backend that keeps a cost cap of its own (like the API backends)."""

    def __init__(self, spec, *, base_dir=None):
        super().__init__(spec, base_dir=base_dir)
        self.caps: list = []

    def set_budget(self, max_cost):
        self.caps.append(max_cost)


def test_a_cost_cap_goes_to_a_backend_that_keeps_one_and_a_local_model_says_none_applies(tmp_path):
    events = []
    labelmill.label(fake_config(), ROWS[:2], project=tmp_path / "p.db", on_event=events.append, max_cost=2.5)
    local = [e.message for e in events if isinstance(e, Notice) and "--max-cost" in e.message]
    assert local == ["--max-cost: fake is a local model and costs nothing; no cap applies"]
    events.clear()
    labelmill.label(fake_config(), ROWS[:2], project=tmp_path / "p.db", on_event=events.append, max_cost=2.5)  # nothing left to label
    labelmill.label(fake_config(), ROWS[:2], project=tmp_path / "q.db", on_event=events.append)  # no cap asked
    assert not [e for e in events if isinstance(e, Notice) and "--max-cost" in e.message]
    config = load_config(fake_config())
    capped = Capped(config.model)
    Runner(Job(config, capped), Store(tmp_path / "c.db"), events.append).run(ROWS[:2], max_cost=1.5)
    assert capped.caps == [1.5] and not [e for e in events if isinstance(e, Notice) and "--max-cost" in e.message]


class Wide(FakeBackend):
    preferred_batch_size = 64


def test_the_batch_is_the_config_s_when_set_else_at_least_what_the_backend_prefers():
    class Narrow(FakeBackend):
        preferred_batch_size = 16

    def size(backend, **model):
        config = load_config({**fake_config(), "model": {"backend": "fake", "name": "keywords", **model}})
        return Runner(Job(config, backend(config.model)), None).batch_size()

    assert size(Wide) == 64 and size(FakeBackend) == 32  # unset: the default 32, or more where the backend prefers more
    assert size(Narrow) == 32  # never below the default
    assert size(Wide, batch_size=4) == 4 and size(Wide, batch_size=100) == 100  # set: the config's, whatever the backend prefers
    from labelmill.backends.llama import LlamaCppBackend

    # the embedded model sorts a call's prompts so rows with the same demos share them: 128 rows share more than 32
    assert size(LlamaCppBackend) == 128 and size(LlamaCppBackend, batch_size=8) == 8


class Budget(FakeBackend):
    """A generating model that answers the first `allowed` prompts (a quarter dollar each), then stops sending: every
    later answer is the `budget_exhausted` failure an API backend gives at its cost cap."""

    allowed = 3

    def __init__(self, spec, *, base_dir=None):
        super().__init__(spec, base_dir=base_dir)
        self.asked = 0

    def generate(self, prompts, *, max_tokens, temperature, seed, schema=None):
        out = []
        for answer in super().generate(prompts, max_tokens=max_tokens, temperature=temperature, seed=seed, schema=schema):
            self.asked += 1
            out.append(answer if self.asked <= self.allowed else Generation("", error="budget_exhausted", error_detail="cap"))
            out[-1].cost_usd = 0.25 if self.asked <= self.allowed else 0.0
        return out


def test_a_batch_that_could_not_be_sent_stops_the_run_after_the_batch_already_started(tmp_path):
    """Batches of 2 over 7 rows; three answers allowed: the first batch is labeled, the second half (its second row
    unsent), the third, started before the stop was known, is finished (nothing sent) and the run stops there."""
    config = load_config(fake_config(model={"method": "generate", "batch_size": 2}))
    events = []
    with pytest.raises(RunStopped) as stop:
        Runner(Job(config, Budget(config.model)), Store(tmp_path / "p.db"), events.append).run(ROWS, max_cost=1.0)
    batches = [(e.done, e.total, e.batch_rows, e.model_rows, e.failed, e.cost_usd) for e in events if isinstance(e, BatchDone)]
    assert batches == [(2, 7, 2, 2, 0, 0.5), (3, 7, 1, 2, 0, 0.75), (3, 7, 0, 2, 0, 0.75)]
    assert all(0 <= e.elapsed_s < 60 for e in events if isinstance(e, BatchDone))
    assert stop.value.kind == "budget_exhausted" and stop.value.result.labeled == 3 and stop.value.result.cost_usd == 0.75
    started = next(e for e in events if isinstance(e, RunStarted))
    assert (started.method, started.model) == ("generate", "fake-keywords")
    assert Store(tmp_path / "p.db").runs()[0]["status"] == "budget_exhausted"


def test_sampled_answers_cost_what_the_model_billed_and_nothing_from_the_cache(tmp_path):
    """Three self-consistency answers a row at a quarter dollar each: 2 rows cost 1.5; the same rows again, in another
    run of the same store, come from the cache and cost nothing; a model that bills nothing costs nothing."""
    config = fake_config(model={"method": "generate", "params": {"keywords": KEYWORDS, "cost_usd": 0.25}}, reasoning={"samples": 3})
    assert labelmill.label(config, ROWS[:2], project=tmp_path / "p.db").cost_usd == pytest.approx(1.5)
    assert labelmill.label(dict(config, name="again"), ROWS[:2], project=tmp_path / "p.db").cost_usd == 0.0
    free = fake_config(model={"method": "generate"}, reasoning={"samples": 3})
    assert labelmill.label(free, ROWS[:2], project=tmp_path / "q.db").cost_usd == 0.0


class Interrupted(FakeBackend):
    def score(self, prompts, candidates):
        raise KeyboardInterrupt


def test_an_interrupted_run_is_marked_so_and_the_interrupt_goes_on(tmp_path):
    config = load_config(fake_config())
    with pytest.raises(KeyboardInterrupt):
        Runner(Job(config, Interrupted(config.model)), Store(tmp_path / "p.db")).run(ROWS, input_name="upload.csv")
    (run,) = Store(tmp_path / "p.db").runs()
    assert run["status"] == "interrupted" and run["input_path"] == "upload.csv"
