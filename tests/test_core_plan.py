"""`labelmill plan`'s figures worked out by hand on the fake backend (a token is 4 characters there, at least 1):
the prompt's shared prefix, each row's tokens, the closed set's candidates, the tokens evaluated with the prefix
reused, the time at the model's rate (with threads, reasoning's extra requests and an ensemble's members) and the
cost of a priced model."""

from __future__ import annotations

import pytest
from conftest import fake_config

import labelmill
from labelmill.backends.fake import FakeBackend
from labelmill.config import ModelSpec, load_config

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
    evaluated = PREFIX + sum(ROW_TOKENS)  # 37: the same prompt, and no candidates scored when generating
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


# calibrate's seed report (core.entry.calibrate_on_seed) ------------------------------------------------------------
def test_the_seed_report_states_the_raw_and_calibrated_figures_of_the_seed_rows(tmp_path):
    """The report of a calibration on 300 seed rows: the raw accuracy is the share the fake labels right (worked out
    from the rows: the keyword rows right, a tied row right when it is positive, the first label), ECE before and
    after as `expected_calibration_error`'s first figure of the raw and the out-of-fold confidences, the threshold
    chosen on the seed rows out of fold, and without its bound."""
    import json

    import numpy as np

    from labelmill.numeric import calibration as cal_mod
    from test_calibration import scored_rows

    config = fake_config(model={"method": "score", "params": {"keywords": {"positive": ["good"], "negative": ["bad"]}}})
    rows = scored_rows(300, 5)
    rows.to_csv(tmp_path / "seed.csv", index=False)
    cal = labelmill.calibrate(config, tmp_path / "seed.csv", project=tmp_path / "p.db", target=0.9)
    report = cal.seed_report
    said = ["positive" if "good" in t and "bad" not in t else "negative" if "bad" in t and "good" not in t else "positive" for t in rows["text"]]
    right = np.array([s == g for s, g in zip(said, rows["label"])])
    assert report["accuracy_raw"] == pytest.approx(right.mean(), abs=1e-12)
    assert report["seed_rows"] == 300 and report["threshold_chosen_on"] == "seed rows (out of fold)"
    stored = labelmill.run(dict(config, output={"include_distribution": True}), tmp_path / "seed.csv", project=tmp_path / "p.db")
    raw = stored.frame["llm_confidence"].to_numpy(dtype=float)
    assert report["ece_raw"] == pytest.approx(cal_mod.expected_calibration_error(right, raw)[0], abs=1e-12)
    assert 0 <= report["ece_calibrated_cv"] < report["ece_raw"] and 0 < report["accuracy_calibrated_cv"] <= 1
    assert set(report["cv_log_loss"]) == {"temperature", "bias", "isotonic", "platt", "bias_platt"}
    assert report["cv_log_loss"][report["method"]] == min(report["cv_log_loss"].values())
    assert report["threshold_without_bound"]["threshold"] <= report["threshold"]["threshold"] and "lower_bound" not in report["threshold_without_bound"]
    assert json.dumps(report)  # plain values, as the CLI prints them


# the cache key (core.job.Job.cache_key) ----------------------------------------------------------------------------
def test_requests_that_differ_in_model_prompt_or_parameters_never_share_a_cache_key():
    """The cache answers a request only with the answer to the same request: the same config and prompt give the
    same key (in a new Job too), and a change of model, labels, method, generation length, temperature, seed,
    request kind or prompt gives another."""
    from labelmill.config import load_config
    from labelmill.core import Job
    from labelmill.core.reasoning import Call
    from labelmill.types import Prompt

    def job(**model):
        cfg = fake_config()
        cfg["model"] = {**cfg["model"], **model}
        return Job(load_config(cfg))

    def labels(names):
        return Job(load_config({**fake_config(), "labels": names}))

    prompt, other = Prompt("Classify.", (), "a good film"), Prompt("Classify.", (), "a good film!")
    base = job()
    keys = {
        "base": base.cache_key(prompt),
        "prompt": base.cache_key(other),
        "params": job(params={"keywords": {"positive": ["good"]}}).cache_key(prompt),  # (the fake's model hash is its keyword table)
        "labels": labels(["negative", "positive"]).cache_key(prompt),
        "generate": job(method="generate").cache_key(prompt),
        "generate longer": job(method="generate", max_tokens=64).cache_key(prompt),
        "generate warmer": job(method="generate", temperature=0.7).cache_key(prompt),
        "generate seed": job(method="generate", seed=1).cache_key(prompt),
        "verify": base.cache_key(prompt, Call("verify", "score", ("yes", "no"))),
        "explain": base.cache_key(prompt, Call("explain", "generate", (), 96, 0.0, 0)),
        "explain longer": base.cache_key(prompt, Call("explain", "generate", (), 128, 0.0, 0)),
        "sample seed 1": base.cache_key(prompt, Call("sample", "generate", (), 96, 0.7, 1)),
        "sample seed 2": base.cache_key(prompt, Call("sample", "generate", (), 96, 0.7, 2)),
        "sample cooler": base.cache_key(prompt, Call("sample", "generate", (), 96, 0.3, 2)),
        "p_true": base.cache_key(prompt, Call("p_true", "score", ("yes", "no"))),
        "p_true other answers": base.cache_key(prompt, Call("p_true", "score", ("no", "yes"))),
    }
    assert len(set(keys.values())) == len(keys), [k for k, v in keys.items() if list(keys.values()).count(v) > 1]
    assert job().cache_key(prompt) == keys["base"] and base.cache_key(Prompt("Classify.", (), "a good film")) == keys["base"]
    # the same parameters on another model (the fake's 'strong' in its by_model table)
    both = {**fake_config()["model"]["params"], "by_model": {"strong": {"positive": ["good"]}}}
    assert job(name="strong", params=both).cache_key(prompt) != job(params=both).cache_key(prompt)


class Templated(FakeBackend):
    """A chat template with text after the row (like an assistant header): 'S:' + system + ' U:' + row + ' A:'."""

    def render(self, prompt):
        return f"S:{prompt.system} U:{prompt.user} A:"


def test_plan_finds_the_row_at_its_last_place_and_counts_the_template_after_it(tmp_path):
    """Row 'negative' also appears in the label list: the prefix ends where the row really is, the last place. The
    template's ' A:' (3 characters: 1 token) comes after every row. System: 'Classify the sentiment.\\n\\nLabels:\\n-
    positive\\n- negative\\n\\nAnswer with the label only.' (83 characters), so the prefix 'S:' + it + ' U:' is 88
    characters, 22 tokens; rows 'negative' and 'a good film!' 2 and 3 tokens; candidates 4 tokens a row."""
    path = tmp_path / "rows.csv"
    path.write_bytes("text;label\nnegative;negative\na good film!;positive\n".encode("utf-16"))
    cfg = load_config(fake_config(dataset={"encoding": "utf-16", "delimiter": ";"}))
    got = labelmill.plan(cfg, path, backend=Templated(cfg.model))
    assert got["prompt_preview"].endswith(" U:negative A:") and (got["prefix_tokens"], got["suffix_tokens"]) == (22, 1)
    assert got["rows"] == 2 and got["mean_row_tokens"] == 2.5 and got["task"] == "classification" and got["backend"] == "fake"
    assert got["tokens_evaluated_with_prefix_reuse"] == 22 + 5 + 2 * (1 + 4)  # the prefix once; each row, its suffix and candidates
    assert got["prompt_tokens_total"] == 2 * (22 + 1) + 5


def test_plan_counts_the_model_s_load_in_setup_and_times_a_known_model_at_its_rate():
    """The fake sleeps 0.26 s on load: setup reads 0.3 and the estimate includes it. A catalog model's rate is its
    own: 45 tokens at the 1.5B's 70 tokens a second, not the default 150."""
    slow = labelmill.plan(fake_config(model={"backend": "fake", "name": "keywords", "params": {"load_s": 0.26}}), ROWS)
    assert slow["setup_seconds"] == 0.3 and slow["estimated_seconds"] == pytest.approx(45 / 150 + 0.26, abs=0.06)

    class OneAndHalf(FakeBackend):
        model_id = "qwen2.5-coder-1.5b"

    cfg = fake_config()
    got = labelmill.plan(cfg, ROWS, backend=OneAndHalf(ModelSpec.model_validate(cfg["model"])))
    assert got["estimated_seconds"] == pytest.approx(45 / 70 + got["setup_seconds"], abs=0.06) and got["model"] == "qwen2.5-coder-1.5b"
