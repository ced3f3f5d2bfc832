"""Server backends against real local HTTP servers: the fault-injecting fake (OpenAI and Anthropic wire
formats, run in a thread of the test) and, marked `model`, llama.cpp's own OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest
from conftest import SHARED, child_env, cli_command

import labelmill
from labelmill.backends.remote import (
    Budget,
    CircuitBreaker,
    RateLimiter,
    parse_retry_after,
)
from labelmill.errors import TRANSIENT_ERRORS, BackendError, RunStopped
from labelmill.store.db import Store
from labelmill.testing.server import FakeModelServer, ServerOptions

LABELS = ["World", "Sports", "Business", "Sci/Tech"]


def agnews(n: int) -> pd.DataFrame:
    return pd.read_csv(SHARED / "ag_news" / "test.csv").head(n)[["text", "label"]]


def server_config(url: str, backend: str = "openai", **server) -> dict:
    return {
        "task": "classification", "name": "agnews", "labels": LABELS, "input_template": "{text}", "gold_column": "label",
        "guidelines": "Classify the topic of the news article.",
        "model": {"backend": backend, "name": "fake-model", "method": "generate", "max_tokens": 4,
                  "server": {"base_url": url, "concurrency": 16, "backoff_s": 0.02, **server}},
    }


@pytest.fixture
def server():
    with FakeModelServer(ServerOptions(latency_s=0.01, labels=LABELS)) as srv:
        yield srv


def test_openai_chat_labels_with_logprob_confidences_and_reruns_from_cache(server, tmp_path):
    rows = agnews(40)
    result = labelmill.run(server_config(server.base_url), rows, project=tmp_path / "p.db")
    assert result.labeled == 40 and result.failed == 0
    expected = [server.reply(text) for text in rows["text"]]
    assert result.frame["llm_label"].tolist() == expected  # each row got its own answer, in order
    assert result.frame["llm_confidence"].round(4).eq(round(pow(2.718281828459045, -0.05), 4)).all()  # exp(logprob)
    asked = server.counts["requests"]
    again = labelmill.run(server_config(server.base_url), rows, project=tmp_path / "p2.db")  # another project file has its own cache
    assert again.model_rows == 40
    rerun = labelmill.run(server_config(server.base_url), rows, project=tmp_path / "p.db")
    assert rerun.model_rows == 0 and server.counts["requests"] == asked + 40
    with Store(tmp_path / "p.db") as store:
        run = store.runs()[0]
        first = next(store.annotations(run["id"]))
    assert first.backend == "openai" and first.model_id == "fake-model" and first.prompt_tokens > 0


def test_chain_of_thought_and_votes_over_an_openai_server(server, tmp_path):
    config = server_config(server.base_url)
    config["reasoning"] = {"chain_of_thought": True, "samples": 3}
    rows = agnews(20)
    result = labelmill.run(config, rows, project=tmp_path / "p.db")
    assert result.labeled == 20 and result.frame["llm_explanation"].str.len().gt(0).all()
    # 3 explanations per row (one per path, seeded differently); this server answers the same explanation
    # alike, so the 3 answer prompts of a row are one prompt, sent once
    assert server.counts["requests"] == 20 * 3 + 20
    with Store(tmp_path / "p.db") as store:
        items = list(store.annotations(store.runs()[0]["id"]))
    assert all(a.signals["votes"] == 3.0 and a.explanation for a in items)
    labelmill.run(config, rows, project=tmp_path / "p.db")
    assert server.counts["requests"] == 80  # a rerun asks nothing


def test_an_ensemble_shares_one_cost_cap(server, tmp_path):
    config = server_config(server.base_url, concurrency=8)
    config["model"]["price"] = {"input": 100.0, "output": 400.0}
    config["ensemble"] = {"members": [{}, {"guidelines": "Name the news article's topic."}], "combine": "vote"}
    with pytest.raises(RunStopped):
        labelmill.run(config, agnews(40), project=tmp_path / "e.db", max_cost=0.6)
    with Store(tmp_path / "e.db") as store:
        runs = store.runs()
        costs = [(a.prompt_tokens * 100 + a.completion_tokens * 400) / 1e6 for run in runs for a in store.annotations(run["id"])]
    assert len(runs) == 2 and 0.6 - max(costs) <= sum(costs) <= 0.6  # both members together stay under the cap


def test_completions_endpoint_and_anthropic_messages(server, tmp_path):
    rows = agnews(12)
    expected = [server.reply(text) for text in rows["text"]]
    # /completions: the prompt is plain text, so the fake's hash differs; the label must still be one of the set
    done = labelmill.run(server_config(server.base_url, endpoint="completions"), rows, project=tmp_path / "c.db")
    assert done.labeled == 12 and set(done.frame["llm_label"]) <= set(LABELS) and done.frame["llm_confidence"].notna().all()
    claude = labelmill.run(server_config(server.base_url.removesuffix("/v1"), backend="anthropic"), rows, project=tmp_path / "a.db")
    assert claude.frame["llm_label"].tolist() == expected
    assert claude.frame["llm_confidence"].isna().all()  # the Messages API gives no log-probabilities


def test_faults_lose_nothing_and_a_rerun_completes_every_row(tmp_path):
    options = ServerOptions(latency_s=0.005, labels=LABELS, fault_rate=0.3, max_faults=12, slow_s=1.0, retry_after_s=0.05, seed=3)
    rows = agnews(300)
    config = server_config("", timeout_s=0.3, max_retries=1, breaker_failures=100)
    with FakeModelServer(options) as srv:
        config["model"]["server"]["base_url"] = srv.base_url
        first = labelmill.run(config, rows, project=tmp_path / "f.db", output=tmp_path / "f.csv")
        out = pd.read_csv(tmp_path / "f.csv", keep_default_na=False)
        assert len(out) == 300 and out["text"].tolist() == rows["text"].tolist()  # none lost, none duplicated
        errors = out.loc[out["llm_label"] == "", "llm_error"].str.split(":").str[0]
        assert set(errors) <= TRANSIENT_ERRORS and (out["llm_label"] != "").sum() == first.labeled
        assert first.labeled + first.failed == 300
        assert sum(srv.counts[f"fault_{k}"] for k in ("429", "500", "slow", "malformed", "reset")) > 20
        second = labelmill.run(config, rows, project=tmp_path / "f.db", output=tmp_path / "f2.csv")
    assert second.labeled == 300 and second.model_rows == first.failed
    assert pd.read_csv(tmp_path / "f2.csv")["llm_label"].tolist() == [srv.reply(t) for t in rows["text"]]


def test_retry_after_is_honoured(tmp_path):
    options = ServerOptions(labels=LABELS, fault_rate=1.0, faults=("429",), max_faults=1, retry_after_s=0.6)
    with FakeModelServer(options) as srv:
        started = time.perf_counter()
        result = labelmill.run(server_config(srv.base_url, concurrency=1), agnews(1), project=tmp_path / "r.db")
        waited = time.perf_counter() - started
    assert result.labeled == 1 and srv.counts["fault_429"] == 1 and srv.counts["requests"] == 2
    assert waited >= 0.6  # backoff_s is 0.02: only the header explains the wait


def test_a_rejected_request_is_a_lasting_typed_failure(server, tmp_path):
    config = server_config(server.base_url)
    config["model"]["server"]["base_url"] = server.base_url + "/nowhere"  # 404 for every request
    result = labelmill.run(config, agnews(3), project=tmp_path / "x.db")
    assert result.failed == 3 and set(result.frame["llm_error"].str.split(":").str[0]) == {"request_rejected"}
    assert server.counts["requests"] == 3  # not retried
    again = labelmill.run(config, agnews(3), project=tmp_path / "x.db")
    assert again.model_rows == 0  # a rerun does not resend it (the config or the server must change)


def test_circuit_breaker_stops_a_run_against_a_dead_server_and_a_rerun_finishes(tmp_path):
    options = ServerOptions(latency_s=0.005, labels=LABELS, down=True)
    config = server_config("", concurrency=4, max_retries=50, breaker_failures=3, breaker_pause_s=0.1, breaker_give_up_s=0.3)
    rows = agnews(40)
    with FakeModelServer(options) as srv:
        config["model"]["server"]["base_url"] = srv.base_url
        started = time.perf_counter()
        with pytest.raises(RunStopped) as stop:
            labelmill.run(config, rows, project=tmp_path / "b.db", output=tmp_path / "b.csv")
        assert time.perf_counter() - started < 10
        assert stop.value.kind == "server_unavailable"
        assert srv.counts["down"] < 40  # it paused instead of hammering the server with every row's retries
        out = pd.read_csv(tmp_path / "b.csv", keep_default_na=False)
        assert len(out) == 40 and (out["llm_error"] != "").all()
        srv.options.down = False
        done = labelmill.run(config, rows, project=tmp_path / "b.db")
    assert done.labeled == 40


def test_max_cost_stops_within_one_request_and_a_higher_cap_finishes(server, tmp_path):
    config = server_config(server.base_url, concurrency=8)
    config["model"]["price"] = {"input": 100.0, "output": 400.0}
    rows = agnews(200)
    with pytest.raises(RunStopped) as stop:
        labelmill.run(config, rows, project=tmp_path / "m.db", max_cost=0.5)
    spent = stop.value.result.cost_usd
    with Store(tmp_path / "m.db") as store:
        run_id = store.runs()[0]["id"]
        costs = [(a.prompt_tokens * 100 + a.completion_tokens * 400) / 1e6 for a in store.annotations(run_id)]
    assert stop.value.kind == "budget_exhausted" and 0 < len(costs) < 200
    assert spent == pytest.approx(sum(costs)) and 0 <= 0.5 - spent <= max(costs)
    done = labelmill.run(config, rows, project=tmp_path / "m.db", max_cost=100.0)
    assert done.labeled == 200 and done.model_rows == 200 - len(costs)


def test_tune_stops_at_its_cost_budget(server, tmp_path):
    from labelmill.strategies.tune.run import tune

    config = server_config(server.base_url, concurrency=8)
    config["model"]["price"] = {"input": 100.0, "output": 400.0}
    agnews(40).to_csv(tmp_path / "dev.csv", index=False)
    report = tune(config, tmp_path / "dev.csv", shots=(0,), calibrations=("none",), reasonings=("none", "sc3"), models=("fake-model", "other-model"),
                  max_cost=1.0, budget_s=120, project=tmp_path / "t.db")
    statuses = [t["status"] for t in report["trials"]]
    # the trial that meets the cap stops (its labels are saved), the ones after it are not started
    assert statuses[0] == "done" and "stopped" in statuses and statuses[-1] == "skipped" and report["trials"][0]["cost_per_row"] > 0
    assert statuses[statuses.index("stopped") + 1 :] == ["skipped"] * (len(statuses) - statuses.index("stopped") - 1)
    assert 0 < report["cost_usd"] <= 1.0  # the cap holds across trials
    assert [t["name"] for t in report["trials"]][:2] == ["fake-model: zero-shot", "fake-model: zero-shot + sc3"]


def test_cli_max_cost_is_one_line_and_plan_prices_the_run(server, tmp_path):
    config = server_config(server.base_url)
    config["model"]["price"] = {"input": 100.0, "output": 400.0}
    (tmp_path / "c.yaml").write_text(json.dumps(config))
    agnews(50).to_csv(tmp_path / "rows.csv", index=False)
    plan = subprocess.run(cli_command("plan", "c.yaml", "rows.csv", "--json"), cwd=tmp_path, env=child_env(), capture_output=True, text=True, check=False)
    planned = json.loads(plan.stdout)
    # the prompts at $100 per million tokens plus every answer's max_tokens (4) at $400 per million
    assert planned["rows"] == 50 and planned["prompt_tokens_total"] > 50
    assert planned["estimated_cost_usd"] == pytest.approx((planned["prompt_tokens_total"] * 100.0 + 50 * 4 * 400.0) / 1e6, abs=1e-6)
    run = subprocess.run(cli_command("run", "c.yaml", "rows.csv", "--out", "o.csv", "--max-cost", "0.2"), cwd=tmp_path, env=child_env(), capture_output=True, text=True, check=False)
    assert run.returncode == RunStopped.exit_code
    assert "stopped at the cost cap" in run.stderr and "--max-cost" in run.stderr and "Traceback" not in run.stderr
    assert (tmp_path / "o.csv").exists()


def test_rate_limiter_spaces_requests():
    async def go() -> float:
        limiter = RateLimiter(requests_per_minute=1200, tokens_per_minute=None)  # 20/s, bursts of 20
        started = time.perf_counter()
        await asyncio.gather(*(limiter.acquire(10) for _ in range(40)))
        return time.perf_counter() - started

    assert 0.9 <= asyncio.run(go()) < 3.0  # 20 at once, then 20 more over ~1 s


def test_budget_and_breaker_units():
    async def budget() -> tuple[bool, bool]:
        b = Budget(cap=1.0)
        first = await b.reserve(0.6)
        b.settle(0.6, 0.5)
        second = await b.reserve(0.6)  # 0.5 spent + 0.6 > 1.0 and nothing in flight: the cap is reached
        return first, second

    assert asyncio.run(budget()) == (True, False)
    breaker = CircuitBreaker(failures=2, pause_s=0.05, give_up_s=0.1)
    breaker.failure()
    breaker.failure()
    assert breaker.opened == 1 and not breaker.dead
    assert parse_retry_after("2") == 2.0 and parse_retry_after("soon") is None
    assert 0 <= parse_retry_after(time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))) <= 31


def test_missing_key_env_and_unpriced_cap_are_clear_errors(server, tmp_path, monkeypatch):
    monkeypatch.delenv("LABELMILL_TEST_KEY", raising=False)
    config = server_config(server.base_url, api_key_env="LABELMILL_TEST_KEY")
    with pytest.raises(BackendError, match="LABELMILL_TEST_KEY"):
        labelmill.run(config, agnews(2), project=tmp_path / "k.db")
    with pytest.raises(BackendError, match="price") as unpriced:
        labelmill.run(server_config(server.base_url), agnews(2), project=tmp_path / "k.db", max_cost=1.0)
    assert "model.price" in unpriced.value.fix


def test_ray_sharding_gives_the_same_labels_and_merges_idempotently(server, tmp_path):
    ray = pytest.importorskip("ray")
    from labelmill.config import load_config
    from labelmill.execute.ray import label_on_ray

    rows = agnews(120)
    plain = labelmill.run(server_config(server.base_url), rows, project=tmp_path / "plain.db")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        sharded = label_on_ray(load_config(server_config(server.base_url)), rows, project=tmp_path / "ray.db", workers=2, shard_rows=25)
        again = label_on_ray(load_config(server_config(server.base_url)), rows, project=tmp_path / "ray.db", workers=2)
    finally:
        ray.shutdown()
    assert sharded.frame["llm_label"].tolist() == plain.frame["llm_label"].tolist()
    assert again.model_rows == 0 and again.labeled == 120
    with Store(tmp_path / "ray.db") as store:
        assert len(list(store.annotations(store.runs()[0]["id"]))) == 120


# ------------------------------------------------------------------------------------------------------
# llama.cpp's own OpenAI-compatible server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server():
    pytest.importorskip("uvicorn")
    from labelmill.models import resolve_model

    path = resolve_model("qwen2.5-coder-0.5b").path
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--model_alias", "qwen2.5-coder-0.5b"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/models", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("python -m llama_cpp.server exited at start")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("llama.cpp server did not start in 120 s")
    yield url
    proc.terminate()
    proc.wait(20)


@pytest.mark.model
def test_real_llama_cpp_server_labels_like_the_embedded_model(llama_server, tmp_path):
    rows = pd.read_csv(SHARED / "sst2" / "test.csv").head(16)
    config = {
        "task": "classification", "name": "sst2-server", "labels": ["positive", "negative"], "input_template": "{text}",
        "gold_column": "label", "guidelines": "Classify the sentiment of the movie review.",
        "model": {"backend": "openai", "name": "qwen2.5-coder-0.5b", "method": "generate", "max_tokens": 4,
                  "server": {"base_url": llama_server, "concurrency": 4, "timeout_s": 120}},
    }
    served = labelmill.run(config, rows, project=tmp_path / "s.db", output=tmp_path / "s.csv")
    assert served.total == 16 and served.labeled == 16
    assert served.frame["llm_confidence"].between(0, 1, inclusive="right").all()  # from the server's token logprobs
    embedded_config = {**config, "model": {"backend": "llama_cpp", "name": "qwen2.5-coder-0.5b", "method": "generate", "max_tokens": 4}}
    embedded = labelmill.run(embedded_config, rows, project=tmp_path / "e.db")
    same = (served.frame["llm_label"] == embedded.frame["llm_label"]).mean()
    assert same >= 0.85, f"server and embedded model agree on only {same:.0%} of rows"  # same weights, greedy
    accuracy = (served.frame["llm_label"] == rows["label"]).mean()
    assert accuracy >= 0.6
    rerun = labelmill.run(config, rows, project=tmp_path / "s.db")
    assert rerun.model_rows == 0


def test_tune_gives_a_cached_trial_the_cost_of_the_trial_that_paid(server, tmp_path):
    from labelmill.strategies.tune.run import tune

    config = server_config(server.base_url, concurrency=8)
    config["model"]["price"] = {"input": 100.0, "output": 400.0}
    agnews(40).to_csv(tmp_path / "dev.csv", index=False)
    report = tune(config, tmp_path / "dev.csv", shots=(0,), calibrations=("none", "auto"), max_cost=50.0, budget_s=120, project=tmp_path / "t.db")
    paid, cached = report["trials"]
    assert paid["status"] == cached["status"] == "done" and paid["cost_per_row"] > 0
    # the calibrated twin asked the server nothing, but labeling that way costs what the first trial paid
    assert cached["cost_per_row"] == paid["cost_per_row"] and cached["seconds_per_row"] == paid["seconds_per_row"]
    assert report["cost_usd"] == pytest.approx(paid["cost_per_row"] * 40)


def test_ray_a_shard_saved_twice_or_retried_after_a_killed_worker_stores_each_row_once(tmp_path):
    """Two ways a shard reaches the driver twice: the same result committed again, and a worker process
    killed mid-shard (os._exit after 30 prompts) that Ray restarts and retries. One annotation per row."""
    import ray
    from conftest import ROWS, fake_config

    from labelmill.config import load_config
    from labelmill.execute.ray import LabelWorker, label_on_ray

    rows = pd.DataFrame(ROWS * 12)  # 84 rows
    rows["text"] = [f"{t} #{i}" for i, t in enumerate(rows["text"])]
    config = fake_config()
    plain = labelmill.run(config, rows, project=tmp_path / "plain.db")
    # 1. the same shard's result committed twice
    worker = LabelWorker(config, str(tmp_path))
    shard = list(range(10))
    result = worker.label(shard, {i: r for i, r in enumerate(rows.to_dict("records")) if i in shard})
    with Store(tmp_path / "twice.db") as store:
        from labelmill.core import begin_run
        from labelmill.tasks import make_task

        cfg = load_config(config)
        run = begin_run(store, cfg, make_task(cfg), rows)
        store.save_batch(run.run_id, result["annotations"], result["entries"])
        store.save_batch(run.run_id, result["annotations"], result["entries"])
        counts = store.db.execute("SELECT row_index, COUNT(*) FROM annotations WHERE run_id = ? GROUP BY row_index", (run.run_id,)).fetchall()
    assert counts == [(i, 1) for i in shard]
    # 2. a worker killed mid-shard, restarted and retried by Ray
    marker = tmp_path / "crashed"
    crashing = fake_config()
    crashing["model"]["params"] = {**crashing["model"]["params"], "crash_marker": str(marker), "crash_after": 30}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        sharded = label_on_ray(load_config(crashing), rows, project=tmp_path / "ray.db", workers=2, shard_rows=20)
    finally:
        ray.shutdown()
    assert marker.exists()  # a worker really died mid-shard
    assert sharded.frame["llm_label"].tolist() == plain.frame["llm_label"].tolist()
    with Store(tmp_path / "ray.db") as store:
        counts = store.db.execute("SELECT row_index, COUNT(*) FROM annotations GROUP BY row_index").fetchall()
    assert counts == [(i, 1) for i in range(len(rows))]


def test_ray_refuses_a_calibration_and_a_misspelt_knob_before_anything_runs(tmp_path):
    """--ray applies no calibration yet: asking for one is a clear error, not a run whose output silently lacks it."""
    from labelmill.config import load_config
    from labelmill.errors import ConfigError
    from labelmill.execute.ray import label_on_ray

    from conftest import fake_config

    with pytest.raises(ConfigError, match="--calibration is not supported with --ray") as refused:
        label_on_ray(load_config(fake_config()), [{"text": "a good day"}], project=tmp_path / "p.db", calibrator=object())
    assert "drop --ray" in refused.value.fix
    with pytest.raises(ConfigError, match="worker"):
        label_on_ray(load_config(fake_config()), [{"text": "a good day"}], project=tmp_path / "p.db", worker=2)
    assert not (tmp_path / "p.db").exists()
