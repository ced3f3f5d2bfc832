"""`labelmill plan`'s figures worked out by hand on the fake backend (a token is 4 characters there, at least 1):
the prompt's shared prefix, each row's tokens, the closed set's candidates, the tokens evaluated with the prefix
reused, the time at the model's rate (with threads, reasoning's extra requests and an ensemble's members) and the
cost of a priced model."""

from __future__ import annotations

import pytest
from conftest import fake_config

import labelmill
from labelmill.backends.fake import FakeBackend
from labelmill.config import ModelSpec

ROWS = [{"text": "a" * 40, "label": "positive"}, {"text": "b" * 8, "label": "negative"}]
# the rendered prompt before the row: "[system]\nClassify the sentiment.\n\nLabels:\n- positive\n- negative\n\n"
# "Answer with the label only.\n\n[user]\n": 101 characters, 25 tokens; rows 40 and 8 characters: 10 and 2 tokens;
# candidates 'positive' and 'negative': 2 tokens each
PREFIX, ROW_TOKENS, CANDIDATES = 25, [10, 2], 4


def test_plan_counts_the_shared_prefix_once_and_each_row_s_tokens_and_candidates():
    got = labelmill.plan(fake_config(), ROWS)
    assert got["prompt_preview"] == ("[system]\nClassify the sentiment.\n\nLabels:\n- positive\n- negative\n\nAnswer with the label only.\n\n[user]\n"
                                     + "a" * 40)
    assert (got["prefix_tokens"], got["suffix_tokens"], got["candidate_tokens"], got["mean_row_tokens"]) == (PREFIX, 0, CANDIDATES, 6.0)
    evaluated = PREFIX + sum(ROW_TOKENS) + 2 * CANDIDATES  # 45: the prefix once, each row, each row's candidates
    assert got["tokens_evaluated_with_prefix_reuse"] == evaluated and got["prompt_tokens_total"] == 2 * PREFIX + sum(ROW_TOKENS)  # 62 sent
    assert got["rows"] == 2 and got["method"] == "score" and got["model"] == "fake-keywords" and got["candidates"] == ["positive", "negative"]
    assert got["demos"] == 0 and got["demo_tokens_per_row"] == 0 and got["demo_selection"] == "fixed"
    # 150 tokens a second on 2 threads (a model the table does not know), plus the measured setup
    assert got["estimated_seconds"] == pytest.approx(evaluated / 150 + got["setup_seconds"], abs=0.1)
    assert got["estimated_cost_usd"] == 0.0 and got["requests_per_row"] == {"answers": 1, "explanations": 0, "checks": 0}
    one = labelmill.plan(fake_config(), ROWS, limit=1)
    assert one["rows"] == 1 and one["tokens_evaluated_with_prefix_reuse"] == PREFIX + 10 + CANDIDATES


def test_plan_scales_the_time_by_threads_reasoning_and_generation():
    """4 threads: twice the rate. Three sampled answers with explanations and a p(true) check: four scoring passes
    and three 96-token explanations a row at 25 tokens a second. Generation: each row's answer tokens at 25 a second."""
    fast = labelmill.plan(fake_config(model={"backend": "fake", "name": "keywords", "n_threads": 4}), ROWS)
    assert fast["estimated_seconds"] == pytest.approx(45 / 300 + fast["setup_seconds"], abs=0.1)
    more = labelmill.plan(fake_config(reasoning={"chain_of_thought": True, "samples": 3, "p_true": True}), ROWS)
    assert more["requests_per_row"] == {"answers": 3, "explanations": 3, "checks": 1}
    assert more["estimated_seconds"] == pytest.approx(45 / 150 * 4 + 2 * 3 * 96 / 25 + more["setup_seconds"], abs=0.1)
    checks = labelmill.plan(fake_config(reasoning={"p_true": True, "verbalized": True}), ROWS)
    assert checks["requests_per_row"]["checks"] == 2
    gen = labelmill.plan(fake_config(model={"backend": "fake", "name": "keywords", "method": "generate", "max_tokens": 50}), ROWS)
    per_row = gen["suffix_tokens"]  # no candidates scored when generating
    evaluated = gen["prefix_tokens"] + sum(ROW_TOKENS) + 2 * per_row
    assert gen["method"] == "generate" and gen["tokens_evaluated_with_prefix_reuse"] == evaluated
    assert gen["estimated_seconds"] == pytest.approx(evaluated / 150 + 2 * 50 / 25 + gen["setup_seconds"], abs=0.1)


class Priced(FakeBackend):
    """A fake with a price list: 1 USD per 1,000 prompt tokens and 2 per 1,000 answer tokens."""

    price = (1.0, 2.0)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens / 1000 * self.price[0] + completion_tokens / 1000 * self.price[1]


class Unpriced(Priced):
    price = None


def test_plan_prices_the_prompts_and_the_longest_answers():
    """62 prompt tokens and 2 rows x max_tokens (32, the classification default) answer tokens: 0.062 + 0.128."""
    cfg = fake_config()
    got = labelmill.plan(cfg, ROWS, backend=Priced(ModelSpec.model_validate(cfg["model"])))
    assert got["estimated_cost_usd"] == pytest.approx(0.062 + 2 * 32 * 2 / 1000, abs=1e-9)
    assert labelmill.plan(cfg, ROWS, backend=Unpriced(ModelSpec.model_validate(cfg["model"])))["estimated_cost_usd"] is None
