"""Classification over a large label set, a few labels a row (`classification.labels_per_row`, Autolabel's
`label_selection`): each row's prompt lists, and its score covers, the k labels whose name and description are
nearest the row; the others get probability 0. Runs the real job, loop and SQLite store on the fake model, with
a stand-in encoder (a word-count vector) through the embeddings seam; the nearest labels below are worked out by
hand from its vocabulary."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import fake_config

import labelmill
from labelmill.backends.fake import FakeBackend
from labelmill.config import load_config
from labelmill.core.job import Job
from labelmill.errors import ConfigError
from labelmill.selectors import embeddings
from labelmill.store.db import Store

VOCAB = ["card", "arrive", "lost", "stolen", "fee", "transfer", "cash", "atm", "rate", "currency"]
LABELS = [
    {"name": "card_arrival", "description": "when will my card arrive"},
    {"name": "lost_card", "description": "my card was lost or stolen"},
    {"name": "transfer_fee", "description": "a fee charged on a transfer"},
    {"name": "cash_withdrawal", "description": "cash taken out at an atm"},
    {"name": "exchange_rate", "description": "the rate of a currency"},
]
KEYWORDS = {"card_arrival": ["delivered"], "lost_card": ["stolen"], "transfer_fee": ["fee"], "cash_withdrawal": ["atm"], "exchange_rate": ["rate"]}
ROWS = [
    {"text": "my card was stolen and i need to know when the new card will arrive", "label": "lost_card"},
    {"text": "what fee do you charge on a currency transfer", "label": "transfer_fee"},
    {"text": "the atm kept my card", "label": "cash_withdrawal"},
]


def word_vectors(texts, model="", store=None):
    """A stand-in encoder: counts of VOCAB's words (and a constant, so no vector is zero), unit length."""
    vectors = np.array([[t.lower().split().count(w) for w in VOCAB] + [0.1] for t in texts], dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(autouse=True)
def encoder(monkeypatch):
    monkeypatch.setattr(embeddings, "embed", word_vectors)


class Recorder(FakeBackend):
    def __init__(self, spec, *, base_dir=None):
        super().__init__(spec, base_dir=base_dir)
        self.asked: list[tuple[int, list[str]]] = []

    def score(self, prompts, candidates):
        self.asked.append((len(prompts), list(candidates)))
        return super().score(prompts, candidates)


def config(k: int = 2, **overrides) -> dict:
    return fake_config(labels=LABELS, guidelines="Which banking intent?", classification={"labels_per_row": k},
                       model={"params": {"keywords": KEYWORDS}}, **overrides)


def test_each_row_lists_and_scores_only_its_nearest_labels():
    cfg = load_config(config(2))
    job = Job(cfg, Recorder(cfg.model))
    texts = [r["text"] for r in ROWS]
    job.prepare_rows(texts)
    prompts = [job.prompt(t) for t in texts]
    # row 0 shares card (x2), stolen and arrive with card_arrival (card, arrive) and lost_card (card, stolen);
    # row 1: fee, transfer -> transfer_fee, currency -> exchange_rate; row 2: atm -> cash_withdrawal, card -> card_arrival
    # and lost_card tie on card alone: the earlier in the config's order wins the tie
    wanted = [["card_arrival", "lost_card"], ["transfer_fee", "exchange_rate"], ["card_arrival", "cash_withdrawal"]]
    for prompt, labels in zip(prompts, wanted):
        listed = [line[2:].split(":")[0] for line in prompt.system.splitlines() if line.startswith("- ")]
        assert listed == labels
    answers = job.call_model(prompts)
    assert sorted(job.backend.asked) == sorted((1, labels) for labels in wanted)  # a call per subset, only its labels
    outcomes = [job.outcome(json.loads(json.dumps(a))) for a in answers]  # as the store's cache keeps them
    assert [o.value for o in outcomes] == ["lost_card", "transfer_fee", "cash_withdrawal"]
    for outcome, labels in zip(outcomes, wanted):
        assert set(outcome.distribution) == {spec["name"] for spec in LABELS}
        assert {name for name, p in outcome.distribution.items() if p > 0} == set(labels)
        assert sum(outcome.distribution.values()) == pytest.approx(1.0)


def test_a_rerun_asks_nothing_and_every_label_is_another_question(tmp_path):
    rows = [{"text": r["text"], "label": r["label"]} for r in ROWS]
    first = labelmill.label(config(2), rows, project=tmp_path / "p.db")
    assert first.model_rows == 3
    again = labelmill.label(config(2, name="again"), rows, project=tmp_path / "p.db")
    assert (again.model_rows, again.cached_rows) == (0, 3)
    every = labelmill.label(config(0, name="every label"), rows, project=tmp_path / "p.db")
    assert every.model_rows == 3  # all five labels listed and scored: another question
    with Store(tmp_path / "p.db") as store:
        runs = [list(store.annotations(run["id"])) for run in store.runs()]
    assert [a.label for a in runs[0]] == ["lost_card", "transfer_fee", "cash_withdrawal"]
    assert sum(p > 0 for p in runs[0][0].distribution.values()) == 2 and sum(p > 0 for p in runs[2][0].distribution.values()) == 5
    assert runs[0][0].confidence > runs[2][0].confidence  # the same scores over fewer labels


def test_as_many_labels_as_the_set_changes_nothing_and_other_tasks_refuse_it():
    cfg = load_config(config(5))
    job = Job(cfg, Recorder(cfg.model))
    prompt = job.prompt(ROWS[0]["text"])
    assert prompt == Job(load_config(config(0)), Recorder(cfg.model)).prompt(ROWS[0]["text"])
    with pytest.raises(ConfigError, match="labels_per_row"):
        load_config(fake_config(task="multilabel", labels=LABELS, classification={"labels_per_row": 2}))
    assert load_config(config(0)).fingerprint() == load_config(fake_config(labels=LABELS, guidelines="Which banking intent?",
                                                                           model={"params": {"keywords": KEYWORDS}})).fingerprint()


def test_plan_counts_the_row_s_own_labels_and_its_own_label_list():
    rows = [{"text": r["text"], "label": r["label"]} for r in ROWS]
    every, nearest = labelmill.plan(config(0), rows), labelmill.plan(config(2), rows)
    # the first row's two labels, against all five: the fake counts 4 characters a token
    assert nearest["candidate_tokens"] == len("card_arrival") // 4 + len("lost_card") // 4 < every["candidate_tokens"]
    # each row after the first pays for its own label list (the system text is not shared); with every label listed,
    # the first row's prompt head is the only one evaluated
    for plan, heads in ((every, 1), (nearest, 3)):
        shared = 3 * plan["mean_row_tokens"] + 3 * (plan["suffix_tokens"] + plan["candidate_tokens"])
        assert plan["tokens_evaluated_with_prefix_reuse"] == pytest.approx(heads * plan["prefix_tokens"] + shared)
