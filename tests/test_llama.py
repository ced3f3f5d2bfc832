"""Integration tests on the real embedded model (llama.cpp in-process). Run serially: one model process at a time."""

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import labelmill
from labelmill.config import ModelSpec
from labelmill.errors import BackendError, ModelNotFoundError
from labelmill.types import Prompt

from conftest import ROOT, SHARED, child_env, cli_command

pytestmark = pytest.mark.model
llama = pytest.importorskip("labelmill.backends.llama")
pytest.importorskip("llama_cpp")

SYSTEM = "Classify the sentiment of the movie review.\n\nLabels:\n- positive\n- negative\n\nAnswer with the label only."
SST2 = pd.read_csv(SHARED / "sst2" / "test.csv")


@pytest.fixture(scope="module")
def backend():
    return llama.LlamaCppBackend(ModelSpec())


def test_batched_scoring_matches_one_row_at_a_time(backend):
    prompts = [Prompt(SYSTEM, (), text) for text in SST2.text[:12]]
    batched = backend.score(prompts, ["positive", "negative"])
    single = [backend.score([p], ["positive", "negative"])[0] for p in prompts]
    for b, s in zip(batched, single):
        assert np.allclose(b.logprobs, s.logprobs, atol=0.25)  # batch kernels differ only in rounding
        if abs(s.logprobs[0] - s.logprobs[1]) > 0.5:
            assert np.argmax(b.logprobs) == np.argmax(s.logprobs)


def test_multi_token_labels_are_scored_exactly(backend):
    engine = backend.engine
    with engine.lock:
        prompt = engine.prompt_tokens(Prompt("Classify the topic.", (), "Apple unveils a new chip for laptops."))
        candidate = engine.tokenize("Sci/Tech", add_bos=False, special=False)
        assert len(candidate) >= 2
        whole = engine.score([prompt], [candidate])[0][0]
        stepwise = sum(engine.score([prompt + candidate[:k]], [[candidate[k]]])[0][0] for k in range(len(candidate)))
    assert whole == pytest.approx(stepwise, abs=0.05)
    assert whole < 0


def test_shared_prefix_is_evaluated_once(backend):
    """Count the tokens llama.cpp evaluates: the shared prefix once, then only each row's own tokens."""
    engine, labels = backend.engine, ["positive", "negative"]
    first = [Prompt(SYSTEM, (), text) for text in SST2.text[10:14]]
    second = [Prompt(SYSTEM, (), text) for text in SST2.text[14:18]]
    backend.score([Prompt("another system prompt entirely", (), "x")], labels)  # sequence 0 holds something else
    before, held = engine.tokens_evaluated, list(engine.prefix)
    backend.score(first, labels)
    first_cost = engine.tokens_evaluated - before
    prefix = len(engine.prefix)
    common = next((i for i, (a, b) in enumerate(zip(held, engine.prefix)) if a != b), min(len(held), prefix))  # "<|im_start|>system\n"
    own = lambda prompts: sum(len(engine.prompt_tokens(p)) - prefix for p in prompts)  # noqa: E731
    rendered = backend.render(first[0])
    assert prefix >= backend.count_tokens(rendered[: rendered.index(SST2.text[10])]) - 1  # the prefix is the shared part
    assert first_cost >= prefix - common + own(first) and common < 8  # the new prefix was evaluated (all but the few tokens it shares)
    before = engine.tokens_evaluated
    backend.score(second, labels)
    second_cost = engine.tokens_evaluated - before
    # the second batch evaluates its rows' own tokens (and label continuations), never the prefix again
    assert own(second) <= second_cost <= own(second) + 2 * len(second) < own(second) + prefix


def test_scored_rows_read_a_shared_demo_once_and_score_as_alone(backend):
    """Rows with two different sets of demos, scored together against labels of several tokens: each row's scores are
    those it gets alone, and the demos a group of sorted rows shares are evaluated once, not once a row (the engine's
    count: under the rows' own prompt tokens plus their label continuations, less five of each set's six demos).
    Held to a few KV cells a group, every row is a group of its own: the same scores, nothing shared."""
    engine = backend.engine
    labels = ["positive", "negative", "not sure at all", "not about a film"]  # two share their first tokens: a trie
    demos = {
        "a": (("A quiet, moving film.", "positive"), ("Dull from start to end.", "negative")),
        "b": (("The acting is wooden and the plot is thin.", "negative"), ("A joy to watch, twice.", "positive")),
    }
    prompts = [Prompt(SYSTEM, demos["a" if i % 2 else "b"], t) for i, t in enumerate(SST2.text[40:52])]
    alone = [backend.score([p], labels)[0].logprobs for p in prompts]
    before = engine.tokens_evaluated
    together = [r.logprobs for r in backend.score(prompts, labels)]
    cost = engine.tokens_evaluated - before
    for a, b in zip(alone, together):
        assert np.allclose(a, b, atol=0.25, rtol=0.02)  # batch kernels differ only in rounding (more, in nats, far in the tail)
    prefix = len(engine.prefix)
    own = sum(len(engine.prompt_tokens(p)) - prefix for p in prompts)
    continuations = len(prompts) * sum(backend.count_tokens(label) - 1 for label in labels)  # at most: a node per label token but the last
    demo_tokens = min(len(engine.prompt_tokens(Prompt(SYSTEM, d, ""))) for d in demos.values()) - prefix - 8
    assert demo_tokens > 20 and cost <= own + continuations - 2 * 5 * demo_tokens
    cells = engine.score_cells
    engine.score_cells = 4
    try:
        before = engine.tokens_evaluated
        apart = [r.logprobs for r in backend.score(prompts, labels)]
        assert engine.tokens_evaluated - before >= own
    finally:
        engine.score_cells = cells
    for a, b in zip(alone, apart):
        assert np.allclose(a, b, atol=0.25, rtol=0.02)


def test_generation_gives_text_and_token_logprobs(backend):
    gens = backend.generate([Prompt(SYSTEM, (), t) for t in SST2.text[:3]], max_tokens=16, temperature=0.0, seed=0)
    for gen in gens:
        assert gen.text and "\x00" not in gen.text and "<|im_end|>" not in gen.text
        assert len(gen.token_logprobs) == gen.completion_tokens < 16  # stopped at end-of-generation
        assert all(lp <= 0 for lp in gen.token_logprobs)


def test_batched_generation_matches_one_row_at_a_time_and_reads_a_shared_demo_once(backend):
    """Rows with two different sets of demos (no prefix shared past the system prompt by all of them): generated
    together they give the texts each gives alone, and the demos a group of rows shares are evaluated once, not once
    a row (the engine's count of evaluated tokens is under the rows' own prompt tokens plus what they generated)."""
    engine = backend.engine
    demos = {
        "a": (("A quiet, moving film.", "positive"), ("Dull from start to end.", "negative")),
        "b": (("The acting is wooden and the plot is thin.", "negative"), ("A joy to watch, twice.", "positive")),
    }
    texts = list(SST2.text[20:32])
    prompts = [Prompt(SYSTEM, demos["a" if i % 2 else "b"], t) for i, t in enumerate(texts)]
    alone = [backend.generate([p], max_tokens=12, temperature=0.0, seed=0)[0] for p in prompts]
    before = engine.tokens_evaluated
    together = backend.generate(prompts, max_tokens=12, temperature=0.0, seed=0)
    cost = engine.tokens_evaluated - before
    assert sum(a.text == b.text for a, b in zip(alone, together)) >= len(prompts) - 1  # batch kernels round a rare token differently
    for a, b in zip(alone, together):  # every row read its own context: its first token's five likeliest as alone (rounding: < 0.2)
        assert all(abs(a.top_logprobs[t] - b.top_logprobs.get(t, -99.0)) < 0.4 for t in list(a.top_logprobs)[:5])
    prefix = len(engine.prefix)
    own = sum(len(engine.prompt_tokens(p)) - prefix for p in prompts)
    generated = sum(g.completion_tokens for g in together)
    demo_tokens = min(len(engine.prompt_tokens(Prompt(SYSTEM, d, ""))) for d in demos.values()) - prefix - 8
    assert demo_tokens > 20 and cost <= own + generated - 2 * 5 * demo_tokens  # six rows a set: five of each set's demos saved


def test_prompt_longer_than_the_context_is_a_clear_error():
    small = llama.LlamaCppBackend(ModelSpec(n_ctx=256))
    with pytest.raises(BackendError, match="context window"):
        small.score([Prompt(SYSTEM, (), "word " * 400)], ["positive", "negative"])


def test_smollm2_is_selectable_by_name(tmp_path):
    config = yaml.safe_load((ROOT / "examples" / "sentiment" / "config.yaml").read_text())
    config["model"]["name"] = "smollm2-135m"
    result = labelmill.label(config, SST2.head(16), project=tmp_path / "p.db")
    assert result.labeled == 16 and set(result.frame.llm_label) <= {"positive", "negative"}


def test_hub_model_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pytest.importorskip("huggingface_hub")
    # read when huggingface_hub is first imported: in a full run another test imported it before the
    # variable was set, and the download waited on the network (23 s in CI) before failing
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    from labelmill.models import resolve_model

    with pytest.raises(ModelNotFoundError, match="could not download"):
        resolve_model("hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf")


def test_example_job_end_to_end(tmp_path):
    """README's main job on 60 rows: completion 1.0 and a real accuracy."""
    out = tmp_path / "out.csv"
    config = ROOT / "examples" / "sentiment" / "config.yaml"
    proc = subprocess.run(
        cli_command("run", str(config), str(ROOT / "examples" / "sentiment" / "sample.csv"), "--out", str(out), "--limit", "60", "--project", str(tmp_path / "p.db"), "--quiet"),
        capture_output=True, text=True, env=child_env(), timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(cli_command("eval", str(config), str(out), "--json"), capture_output=True, text=True, env=child_env(), timeout=120)
    metrics = json.loads(proc.stdout)
    assert metrics["completion_rate"] == 1.0 and metrics["n_rows"] == 60
    assert metrics["accuracy"] >= 0.78  # measured 0.817 (49 of 60) on 2026-12-01; chance 0.5
    assert metrics["ece"] < 0.12  # measured 0.065


def test_kill_9_with_the_real_model(tmp_path):
    n = 48
    data = tmp_path / "rows.csv"
    SST2.head(n).to_csv(data, index=False)
    config = yaml.safe_load((ROOT / "examples" / "sentiment" / "config.yaml").read_text())
    config["model"]["batch_size"] = 8
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    db = tmp_path / "p.db"
    args = ("run", str(tmp_path / "c.yaml"), str(data), "--out", str(tmp_path / "out.csv"), "--project", str(db), "--quiet")
    proc = subprocess.Popen(cli_command(*args), env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    saved = 0
    while time.time() < deadline and saved < 16:
        time.sleep(0.2)
        try:
            with sqlite3.connect(db) as con:
                saved = con.execute("SELECT COUNT(*) FROM annotations").fetchone()[0]
        except sqlite3.Error:
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as con:
        before = dict(con.execute("SELECT row_index, label FROM annotations"))
    assert 16 <= len(before) < n
    rerun = subprocess.run(cli_command(*args, "--json"), capture_output=True, text=True, env=child_env(), timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert summary["model_rows"] == n - len(before)  # saved rows were not sent again
    with sqlite3.connect(db) as con:
        after = con.execute("SELECT row_index, label FROM annotations ORDER BY row_index").fetchall()
    assert [i for i, _ in after] == list(range(n))
    assert all(dict(after)[i] == label for i, label in before.items())


def test_generation_reports_tokens_and_first_token_alternatives(backend):
    gen = backend.generate([Prompt(SYSTEM, (), SST2.text[0])], max_tokens=8, temperature=0.0, seed=0)[0]
    raw = "".join(gen.tokens)
    assert raw[gen.lead :].strip() == gen.text and len(gen.tokens) == gen.completion_tokens
    assert len(gen.top_logprobs) >= 10
    first = max(gen.top_logprobs, key=gen.top_logprobs.get)
    assert gen.tokens[0] == first  # greedy: the chosen first token is the most likely one
    assert gen.top_logprobs[first] == pytest.approx(gen.token_logprobs[0], abs=1e-6)


def test_json_schema_grammar_constrains_generation(backend):
    schema = {
        "type": "object",
        "properties": {"sentiment": {"enum": ["good", "bad"]}, "stars": {"type": "integer"}},
        "required": ["sentiment", "stars"],
        "additionalProperties": False,
    }
    prompts = [Prompt("Rate the review. Reply in JSON.", (), text) for text in SST2.text[:6]]
    free = backend.generate(prompts, max_tokens=48, temperature=0.0, seed=0)
    constrained = backend.generate(prompts, max_tokens=48, temperature=0.0, seed=0, schema=schema)
    for gen in constrained:
        data = json.loads(gen.text)
        assert set(data) == {"sentiment", "stars"} and data["sentiment"] in ("good", "bad") and isinstance(data["stars"], int)
    assert any(_not_valid(g.text, schema) for g in free)  # without the grammar the model does not follow it


def _not_valid(text, schema):
    try:
        data = json.loads(text)
    except ValueError:
        return True
    return not isinstance(data, dict) or set(data) != set(schema["properties"]) or data.get("sentiment") not in ("good", "bad")


@pytest.mark.parametrize(
    ("name", "data", "rows"),
    [("ner", "conll2003/test.jsonl", 24), ("matching", "em_walmart_amazon/test.csv", 24), ("qa", "squad_v2/dev_subset.jsonl", 9), ("extraction", None, 12)],
)
def test_task_examples_run_on_the_real_model(tmp_path, name, data, rows):
    config = ROOT / "examples" / name / "config.yaml"
    source = SHARED / data if data else next((ROOT / "examples" / name).glob("sample.*"))
    out = tmp_path / ("out.jsonl" if str(source).endswith(".jsonl") else "out.csv")
    result = labelmill.run(config, source, output=out, limit=rows, project=tmp_path / "p.db")
    metrics = labelmill.evaluate(config, out)
    assert metrics["completion_rate"] >= 0.9, metrics.get("failures")
    assert result.model_rows == rows
    if name == "ner":
        frame = pd.read_json(out, lines=True)
        for text, spans in zip(frame.text, frame.llm_label):
            assert all(text[s["start"] : s["end"]] == s["text"] for s in spans or [])
        assert metrics["f1_strict"] >= 0.42  # measured 0.449 on these 24 sentences in this test (0.500 alone; 0.571 on 300, bench/README)
    if name == "matching":
        assert metrics["f1"] >= 0.5  # measured 0.571; answering "no match" always scores F1 0 (and accuracy 0.875 here)
    if name == "qa":
        # 4 of these 9 questions (one shared context; the next 7 have one twice as long, 86 s of CI for 16 rows)
        # are unanswerable. What is checked is that the 0.5B does both: answers (F1 0.4 on the answerable 5,
        # measured 2026-12-06) and abstains (0.25 on the unanswerable 4); a model stuck on either side scores 0 there
        assert metrics["answerable"]["f1"] >= 0.2 and metrics["unanswerable"]["f1"] >= 0.2
    if name == "extraction":
        assert metrics["completion_rate"] == 1.0  # the grammar makes every answer valid JSON of the schema
        assert metrics["accuracy"]["brand"] >= 0.6  # measured 0.667 (8 of 12)


def test_freeal_and_cascade_on_the_real_model(tmp_path):
    """The loop and the cascade on 80 AG News rows with the real model: every round is stored, the demos
    are other rows with the LLM's labels, and the cascade's LLM rows are the real model's labels."""
    from labelmill.strategies.cascade.run import llm_cascade
    from labelmill.strategies.freeal.run import freeal

    rows = pd.read_csv(SHARED / "ag_news" / "test.csv").head(80)[["text", "label"]]
    config = {
        "task": "classification", "name": "agnews", "labels": ["World", "Sports", "Business", "Sci/Tech"], "gold_column": "label",
        "guidelines": "Classify the topic of the news article.", "input_template": "{text}",
        "model": {"backend": "llama_cpp", "name": "qwen2.5-coder-0.5b", "method": "score"},
    }
    result = freeal(config, rows, rounds=1, project=tmp_path / "p.db", group_rows=40)
    first, last = result.rounds
    assert first.relabeled == 80 and 0 < last.relabeled < 80 and last.run_ids
    # measured on these 80 rows (2026-12-01, three runs): round 0 0.525 (batch-calibrated); the rows round 1
    # keeps as clean 0.646-0.926 accurate (which rows look clean moves with the model's last digits, which
    # move with what the process ran before: 0.571 in one full suite run, 2026-12-04); round 1 0.4375-0.4875
    # (the majority label is 0.4375). FreeAL's gain is measured on 2,000 rows in bench/freeal.py; here: round 0
    # a few points under what was measured, the rows small-loss selection keeps clearly more accurate than the
    # rows it sets aside (2026-12-04: 0.625 against 0.406, 60% kept), round 1 no collapse
    assert first.accuracy is not None and first.accuracy >= 0.5
    share = last.clean_share  # of the round-0 labels, which are `first.accuracy` right overall
    set_aside = (first.accuracy - share * last.clean_accuracy) / (1 - share)
    majority = float(rows["label"].value_counts().iloc[0]) / len(rows)  # 0.4375 on these rows
    assert 0 < share < 1 and last.clean_accuracy >= set_aside + 0.05 and last.accuracy >= majority
    with sqlite3.connect(tmp_path / "p.db") as db:
        demos = json.loads(db.execute("SELECT config FROM runs WHERE id = ?", (last.run_ids[0],)).fetchone()[0])["examples"]["items"]
    assert demos and all(set(d) == {"text", "__freeal_label"} for d in demos)
    assert set(result.frame["llm_label"]) <= set(config["labels"])
    done = llm_cascade(config, rows, sample=24, llm_share=0.5, project=tmp_path / "p.db")
    llm_rows = done.frame["llm_label_source"] == "llm"
    assert 24 <= llm_rows.sum() <= 40 and done.frame["llm_label"].notna().all()
    # the cascade's LLM labels are the model's own answers: the same as the zero-shot run's for those rows
    zero = labelmill.run(config, rows, project=tmp_path / "p.db")
    assert zero.model_rows == 0  # every row's answer is already in the cache
    assert (done.frame.loc[llm_rows, "llm_label"] == zero.frame.loc[llm_rows, "llm_label"]).all()


def test_sampling_is_seeded_per_row_whatever_the_batch(backend):
    prompts = [Prompt(SYSTEM, (), t) for t in SST2.text[:6]]
    first = [g.text for g in backend.generate(prompts, max_tokens=12, temperature=1.0, seed=3)]
    reordered = [g.text for g in backend.generate(prompts[::-1], max_tokens=12, temperature=1.0, seed=3)][::-1]
    alone = backend.generate(prompts[:1], max_tokens=12, temperature=1.0, seed=3)[0].text
    other_seed = [g.text for g in backend.generate(prompts, max_tokens=12, temperature=1.0, seed=4)]
    # the same (seed, prompt) samples the same text in any batch (batch kernels may round a rare token differently)
    assert sum(a == b for a, b in zip(first, reordered)) >= 5 and alone == first[0]
    assert first != other_seed


def test_reasoning_on_the_real_model(tmp_path):
    """Chain of thought with 3 paths, P(True) and verbalized confidence on 4 SST-2 rows with the real model."""
    config = {
        "task": "classification", "name": "sst2-reasoning", "labels": ["positive", "negative"], "gold_column": "label",
        "guidelines": "Classify the sentiment of the movie review.", "input_template": "{text}",
        "reasoning": {"chain_of_thought": True, "samples": 3, "p_true": True, "verbalized": True, "explanation_tokens": 48},
        "model": {"backend": "llama_cpp", "name": "qwen2.5-coder-0.5b", "method": "score"},
    }
    rows = SST2.head(4)[["text", "label"]]
    result = labelmill.label(config, rows, project=tmp_path / "p.db")
    frame = result.frame
    assert result.labeled == 4 and set(frame.llm_label) <= {"positive", "negative"}
    assert frame.llm_explanation.str.len().gt(10).all()  # the model's own words, kept per row
    assert (frame.llm_label == rows.label).all()  # measured 8 of 8 on the first 8 (each row's samples are seeded by the row)
    with sqlite3.connect(tmp_path / "p.db") as db:
        signals = [json.loads(s) for (s,) in db.execute("SELECT signals FROM annotations ORDER BY row_index")]
        kinds = dict(db.execute("SELECT kind, COUNT(*) FROM cache GROUP BY kind").fetchall())
    assert kinds["explain"] == 12 and kinds["verify"] == 4 and kinds["verbalized"] == 4
    for s, conf in zip(signals, frame.llm_confidence):
        assert s["agreement"] in (pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0) and s["agreement"] == pytest.approx(conf)
        assert 0.0 < s["p_true"] < 1.0 and 0.0 <= s["verbalized"] <= 1.0
    again = labelmill.label(dict(config, name="renamed"), rows, project=tmp_path / "p.db")
    assert again.model_rows == 0  # explanations, samples and checks all come from the cache
    assert again.frame.llm_explanation.tolist() == frame.llm_explanation.tolist()


def test_doctor_on_this_machine():
    """`labelmill doctor`: the real decode check passes, the build fits this CPU, features match /proc/cpuinfo."""
    from labelmill.backends.cpuflags import parse_cpuinfo

    done = subprocess.run(cli_command("doctor", "--json"), capture_output=True, text=True, env=child_env(), timeout=600)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["model_runs"] and found["decode"]["ok"]
    assert "CPU" in found["decode"]["system_info"]
    assert found["build_fits_cpu"] is True, "the installed llama.cpp was not built for this CPU by scripts/install.sh"
    listed = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    assert set(found["cpu_features"]) <= listed
    args = found["installed_build"]["cmake_args"]
    if found["installed_build"]["level"] == "avx512":
        assert ("avx_vnni" in listed) == ("-DGGML_AVX_VNNI=ON" in args)
    assert not any("AMX" in a and a.endswith("=ON") for a in args)
    default = next(m for m in found["models"] if m["name"] == "qwen2.5-coder-0.5b")
    assert default["state"] == "verified" and default["sha256"].startswith("1d9614638d18")


def test_weak_supervision_on_the_real_model(tmp_path):
    """The shipped Civil Comments sub-labelers on 8 rows (12 seed rows) with the real model: every prompted
    sub-labeler is a run of its own, its votes are the model's scored answers, and a rerun asks the model nothing."""
    from labelmill.strategies.weak import weak

    short = lambda frame: frame[frame["text"].str.len() <= 120]  # the claims are the runs' shape: a quarter of the tokens
    rows = short(pd.read_csv(SHARED / "civil_comments" / "test.csv")).head(8)
    config = yaml.safe_load((ROOT / "examples" / "weak" / "civil.yaml").read_text())
    # 12 of its 200 seed rows (2 toxic): the thresholds and the anchoring run on them all the same, at a sixteenth of the calls
    seed = tmp_path / "seed.csv"
    short(pd.read_csv(SHARED / "civil_comments" / "train_seed.csv")).head(12).to_csv(seed, index=False)
    config["weak"].update(seed=str(seed), seed_rows=12)
    result = weak(config, rows, project=tmp_path / "p.db")
    assert set(result.run_ids) == {"insult", "obscene", "civil", "zero_shot"}
    assert result.L.shape == (8, 5) and (result.L[:, 4] != -1).all()  # the zero-shot labeler always votes
    assert set(result.frame["llm_label"].dropna()) <= {"toxic", "not toxic"}
    with sqlite3.connect(tmp_path / "p.db") as db:
        cached = db.execute("SELECT COUNT(*) FROM cache").fetchone()[0]
    again = weak(config, rows, project=tmp_path / "p.db")
    with sqlite3.connect(tmp_path / "p.db") as db:
        assert db.execute("SELECT COUNT(*) FROM cache").fetchone()[0] == cached
    assert again.L.tolist() == result.L.tolist()


SEMEVAL_ROWS, CONLL_ROWS = 10, 5
# measured on these rows: SemEval official macro-F1 0.286 (accuracy 0.20; 2026-12-05, 10 rows: 60 s with the
# model load and the 451 demos embedded; 0.142 on the first 20 in 100 s), CoNLL04 entity F1 0.35, strict relation F1 0.2 (2026-12-05, 5 rows: 56 s alone; 10
# rows took 91 s in CI and scored 0.447 / 0.105); floors a few points under, the relation floor "a few right"
SEMEVAL_FLOOR, CONLL_ENTITY_FLOOR, CONLL_RELATION_FLOOR = 0.25, 0.30, 0.05


def test_relations_on_the_real_model(tmp_path):
    """SemEval marked pairs (demos: the shipped 451-row train sample) and CoNLL04 end to end, on fixed rows:
    every row labeled, every relation between real spans of its sentence, scores at the measured level."""
    semeval = yaml.safe_load((ROOT / "examples" / "relations" / "semeval.yaml").read_text())
    semeval["examples"]["file"] = str(ROOT / "examples" / "relations" / "semeval_seed.jsonl")
    rows = pd.read_json(SHARED / "semeval2010_task8" / "test.jsonl", lines=True).head(SEMEVAL_ROWS)
    out = tmp_path / "semeval.jsonl"
    labelmill.run(semeval, rows, output=out, project=tmp_path / "s.db")
    metrics = labelmill.evaluate(semeval, out)
    assert metrics["completion_rate"] == 1.0  # scored: no parse failures
    assert metrics["official_macro_f1"] >= SEMEVAL_FLOOR, metrics["official_per_type"]
    conll = yaml.safe_load((ROOT / "examples" / "relations" / "conll04.yaml").read_text())
    conll["examples"]["file"] = str(ROOT / "examples" / "relations" / "conll04_seed.jsonl")
    out = tmp_path / "conll.jsonl"
    labelmill.run(conll, SHARED / "conll04" / "test.jsonl", output=out, limit=CONLL_ROWS, project=tmp_path / "c.db")
    frame = pd.read_json(out, lines=True)
    for text, value in zip(frame["text"], frame["llm_label"]):
        for span in value["entities"]:
            assert text[span["start"]:span["end"]] == span["text"]
        for rel in value["relations"]:
            assert value["entities"][rel["head"]]["text"] == rel["head_text"] and rel["confidence"] >= 0.5
    metrics = labelmill.evaluate(conll, out)
    assert metrics["completion_rate"] == 1.0
    assert metrics["entity_f1"] >= CONLL_ENTITY_FLOOR and metrics["relation_f1_strict"] >= CONLL_RELATION_FLOOR
