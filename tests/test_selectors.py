"""Few-shot selection: balanced, nearest, MMR and per-label picks; real all-MiniLM-L6-v2 embeddings cached in the store."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import fake_config

import labelmill
from labelmill.config import load_config
from labelmill.selectors.pickers import (
    DemoPicker,
    max_marginal_relevance,
    nearest,
    select_balanced,
    similar_per_label,
)
from labelmill.store.db import Store
from labelmill.tasks import make_task
from labelmill.tasks.base import Demo


def unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def test_balanced_draws_round_robin_over_labels():
    pool = [Demo(f"x{i}", "a" if i < 8 else "b") for i in range(10)]
    golds = [d.answer for d in pool]
    chosen = select_balanced(pool, golds, 4, seed=1)
    assert sorted(d.answer for d in chosen) == ["a", "a", "b", "b"] and len(set(chosen)) == 4


def test_nearest_mmr_and_per_label_on_known_vectors():
    vectors = np.stack([unit([1, 0, 0]), unit([0.99, 0.01, 0]), unit([0.8, 0.6, 0]), unit([-1, 0, 0]), unit([0, 0, -1])])
    query = unit([1, 0.05, 0])
    assert nearest(query, vectors, 2) == [1, 0]
    # MMR with a strong diversity weight skips the near-duplicate of the best example
    assert max_marginal_relevance(query, vectors, 2, lam=0.5) == [1, 2]
    assert max_marginal_relevance(query, vectors, 2, lam=1.0) == [1, 0]  # no diversity weight: plain nearest
    assert similar_per_label(query, vectors, ["a", "a", "b", "c", "d"], 2) == [1, 2]


def test_similarity_picks_the_related_example_with_real_embeddings(tmp_path):
    pytest.importorskip("sentence_transformers")
    items = [
        {"text": "My new card has still not been delivered", "label": "card_arrival"},
        {"text": "How do I change the PIN of my card?", "label": "change_pin"},
        {"text": "What exchange rate do you use for euros?", "label": "exchange_rate"},
        {"text": "I was charged twice for one purchase", "label": "transaction_charged_twice"},
    ]
    config = load_config(fake_config(labels=[i["label"] for i in items], examples={"items": items, "k": 2, "selection": "similar"}))
    picker = DemoPicker(config, make_task(config))
    with Store(tmp_path / "p.db") as store:
        picker.prepare(["I am still waiting for the card you sent me", "Which rate applies when I pay in dollars?"], store)
        cached = store.db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    assert cached == 6  # 4 examples + 2 rows, stored once
    card = picker.for_row("I am still waiting for the card you sent me")
    rate = picker.for_row("Which rate applies when I pay in dollars?")
    assert card[-1].answer == "card_arrival" and rate[-1].answer == "exchange_rate"  # the nearest sits next to the row
    assert len(card) == 2


def test_per_row_demos_reach_the_prompt_and_plan(tmp_path):
    pytest.importorskip("sentence_transformers")
    items = [{"text": "a good and fun film", "label": "positive"}, {"text": "bad acting and a dull plot", "label": "negative"},
             {"text": "great cast", "label": "positive"}, {"text": "boring", "label": "negative"}]
    config = fake_config(examples={"items": items, "k": 1, "selection": "similar"})
    result = labelmill.run(config, [{"text": "a dull and boring plot"}, {"text": "a fun film"}], project=tmp_path / "p.db")
    assert result.labeled == 2
    plan = labelmill.plan(config, [{"text": "a dull and boring plot"}])
    assert "bad acting and a dull plot" in plan["prompt_preview"] and plan["demos"] == 1 and plan["demo_selection"] == "similar"


def test_the_encoder_precision_follows_the_cpu_and_the_environment(monkeypatch):
    from labelmill.errors import ConfigError
    from labelmill.selectors.embeddings import encoder_dtype

    monkeypatch.delenv("LABELMILL_ENCODER_DTYPE", raising=False)
    assert encoder_dtype(frozenset({"avx2", "avx512f", "avx512_bf16"})) == "bfloat16"
    assert encoder_dtype(frozenset({"avx2", "avx512_bf16", "amx_bf16", "amx_tile"})) == "float32"  # AMX traps on some machines
    assert encoder_dtype(frozenset({"avx2", "fma"})) == "float32"
    monkeypatch.setenv("LABELMILL_ENCODER_DTYPE", "float32")
    assert encoder_dtype(frozenset({"avx512_bf16"})) == "float32"
    monkeypatch.setenv("LABELMILL_ENCODER_DTYPE", "fp8")
    with pytest.raises(ConfigError, match="not a precision"):
        encoder_dtype()


def _embedded_under(monkeypatch, texts, *settings):
    """`texts` embedded once under each of `settings` (environment variables, each added to the ones before),
    each time by a freshly loaded encoder; the next test loads its own."""
    from labelmill.selectors.embeddings import embed, unload_all

    out = []
    try:
        for env in settings:
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            unload_all()
            out.append(embed(texts))
    finally:
        unload_all()
    return out


def test_a_bfloat16_encoder_gives_the_float32_vectors_within_rounding(monkeypatch):
    texts = ["A delightful, moving film.", "The stock market fell sharply today.", "Rain again on the long commute."]
    exact, rounded = _embedded_under(
        monkeypatch, texts, {"LABELMILL_ENCODER": "sentence-transformers", "LABELMILL_ENCODER_DTYPE": "float32"}, {"LABELMILL_ENCODER_DTYPE": "bfloat16"}
    )
    assert rounded.dtype == np.float32 and rounded.shape == exact.shape
    assert (np.sum(exact * rounded, axis=1) > 0.99).all()


def test_the_numpy_minilm_gives_sentence_transformers_float32_vectors_without_importing_torch(monkeypatch):
    """The default encoder's numpy path is the same network: every vector within rounding of
    sentence-transformers' float32 one (a text past 256 word pieces truncated alike, an empty text, accents),
    the same nearest neighbours, and torch never imported for it (the seconds it saves)."""
    import os
    import subprocess
    import sys

    from labelmill.errors import ConfigError
    from labelmill.selectors.embeddings import embed

    texts = [
        "A delightful, moving film.",
        "The stock market fell sharply today after the central bank raised rates.",
        "Rain again on the long commute.",
        "",
        "Café société: naïve résumés über alles!",
        "word " * 400,  # truncated at 256 word pieces by both
        "I lost my card, how do I get a new one?",
        "When will my card arrive?",
    ]
    reference, ours = _embedded_under(
        monkeypatch, texts, {"LABELMILL_ENCODER": "sentence-transformers", "LABELMILL_ENCODER_DTYPE": "float32"}, {"LABELMILL_ENCODER": "numpy"}
    )
    assert ours.shape == reference.shape == (len(texts), 384) and ours.dtype == np.float32
    assert np.abs(ours - reference).max() < 1e-4
    assert (np.linalg.norm(ours, axis=1) > 0.999).all()
    assert ((ours @ ours.T) - np.eye(len(texts)) * 2).argmax(1).tolist() == ((reference @ reference.T) - np.eye(len(texts)) * 2).argmax(1).tolist()
    code = "import sys; from labelmill.selectors.embeddings import embed; embed(['a film']); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "LABELMILL_ENCODER": "numpy"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
    monkeypatch.setenv("LABELMILL_ENCODER", "nump")  # a typo is named, not read as the default
    with pytest.raises(ConfigError, match="not an encoder engine"):
        embed(["a film"])


def test_plan_counts_each_row_s_own_demos_and_the_scored_labels_for_every_row():
    """Demos chosen per row are no shared prefix: every row after the first evaluates its own (the fake counts
    a token per 4 characters); a scored label set is evaluated after every row."""
    pytest.importorskip("sentence_transformers")
    items = [{"text": "a good and fun film", "label": "positive"}, {"text": "bad acting and a dull plot", "label": "negative"}]
    rows = [{"text": "a dull and boring plot"}, {"text": "a fun film"}, {"text": "great"}]  # 5, 2 and 1 tokens
    similar = labelmill.plan(fake_config(examples={"items": items, "k": 1, "selection": "similar"}), rows)
    fixed = labelmill.plan(fake_config(examples={"items": items, "k": 1, "selection": "fixed"}), rows)
    assert similar["demo_tokens_per_row"] == 6 + 2 + 10  # "bad acting and a dull plot", "negative", the two turns' markers
    assert fixed["demo_tokens_per_row"] == 0  # the same demo for every row sits in the shared prefix
    labels = 2 + 2  # "positive" and "negative", scored after each row
    for plan, demos in ((fixed, 0), (similar, 2 * 18)):
        assert plan["tokens_evaluated_with_prefix_reuse"] == plan["prefix_tokens"] + (5 + 2 + 1) + 3 * (plan["suffix_tokens"] + labels) + demos


def test_the_shared_rank_puts_the_examples_others_pick_most_first():
    from labelmill.selectors.pickers import in_order, shared_rank

    # a, b near each other, c near b, d orthogonal to all: counted by hand, each example's 2 nearest others
    # (ties by place): a -> b, c; b -> a, c; c -> b, a; d -> a, b. Picked by a: b 3 times, a 3, c 2, d 0.
    vectors = np.stack([unit([1, 0, 0]), unit([0.8, 0.6, 0]), unit([0, 1, 0]), unit([0, 0, 1])])
    rank = shared_rank(vectors, 2)
    assert list(rank) == [0, 1, 2, 3]
    # the same four in the order d, c, b, a: d -> c, b; c -> b, d; b -> a, c; a -> b, d. b 3 times, d 2, c 2, a 1
    assert list(shared_rank(np.stack([vectors[3], vectors[2], vectors[1], vectors[0]]), 2)) == [1, 2, 0, 3]
    picked = [2, 0, 1]  # best first
    assert in_order(picked, "nearest_last") == [1, 0, 2]
    assert in_order(picked, "nearest_first") == [2, 0, 1]
    assert in_order(picked, "shared_first", rank) == [0, 1, 2]


def test_shared_first_shows_each_rows_own_examples_in_one_order_for_all_rows(tmp_path):
    pytest.importorskip("sentence_transformers")
    items = [{"text": t, "label": "xy"[i % 2]} for i, t in enumerate((
        "My new card has still not been delivered", "How do I change the PIN of my card?", "What exchange rate do you use for euros?",
        "I was charged twice for one purchase", "Where is the card I ordered last week?", "Can I pay in dollars with this card?",
    ))]
    rows = ["I am still waiting for the card you sent me", "Which rate applies when I pay in dollars?", "A purchase shows up twice",
            "I forgot my PIN", "the card never came"]
    shown = {}
    for order in ("nearest_last", "shared_first"):
        config = load_config(fake_config(labels=["x", "y"], examples={"items": items, "k": 3, "selection": "similar", "order": order}))
        picker = DemoPicker(config, make_task(config))
        picker.prepare(rows)
        shown[order] = [[d.input for d in picker.for_row(r)] for r in rows]
    for mine, theirs in zip(shown["shared_first"], shown["nearest_last"]):
        assert sorted(mine) == sorted(theirs)  # the same examples, only their order differs
    place = {}
    for demos in shown["shared_first"]:  # any two examples stand in the same order in every row that shows both
        for i, first in enumerate(demos):
            for second in demos[i + 1 :]:
                assert place.setdefault((first, second), True) and (second, first) not in place


def test_the_shared_rank_counts_every_block_of_a_large_pool():
    from labelmill.selectors.pickers import shared_rank

    # two hubs, each the nearest of its own cloud of perturbations (in 256 dimensions two perturbations are further
    # apart than either is from its hub): hub a (place 0) of places 1-290, hub b (place 599) of places 291-598.
    # b is picked 308 times against a's 290, but only 221 of b's come from the first block of 512 rows
    rng = np.random.default_rng(0)
    a, b = np.eye(256)[0], np.eye(256)[1]
    cloud = [unit(a + 0.02 * rng.normal(size=256)) for _ in range(290)] + [unit(b + 0.02 * rng.normal(size=256)) for _ in range(308)]
    rank = shared_rank(np.stack([a, *cloud, b]), 1)
    assert rank[599] == 0 and rank[0] == 1 and sorted(rank) == list(range(600))
