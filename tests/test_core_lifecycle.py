"""The run lifecycle (core.lifecycle) driven one part at a time on a real SQLite store: the run key a resumed run
is found by, what the runs table keeps, a `--limit` run inside a longer one, the events each end sends, the
output and a clean stop's message. Expected values are written out by hand (the run key from its recipe:
SHA-256 of canonical JSON, first 24 hex digits)."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from conftest import ROWS, fake_config

import labelmill
from labelmill.config import load_config
from labelmill.core.lifecycle import BatchStats, Ending, Tally, announce, begin_run, finish_run, open_run
from labelmill.errors import RunStopped
from labelmill.events import RunFinished, RunStarted
from labelmill.io import content_hash, read_rows
from labelmill.store.db import Store
from labelmill.tasks import make_task


def _parts(tmp_path, **overrides):
    config = load_config(fake_config(**overrides))
    return Store(tmp_path / "p.db"), config, make_task(config)


def test_a_tally_sums_each_batch_s_model_rows_cached_rows_and_cost():
    tally = Tally()
    tally.add(BatchStats(model=3, cached=2, failed=1, cost=0.25))
    tally.add(BatchStats(model=4, cached=5, cost=0.5))
    assert (tally.model, tally.cached, tally.cost) == (7, 7, 0.75)


def test_a_run_is_keyed_by_the_config_s_fingerprint_and_the_input_s_hash_and_keeps_what_it_was_given(tmp_path):
    store, config, _ = _parts(tmp_path)
    full = read_rows(ROWS)
    input_hash = content_hash(full)
    run_id, done, pending = open_run(store, config, full, len(full), tmp_path / "in.csv")
    run = store.runs()[0]
    recipe = json.dumps({"config": config.fingerprint(), "input": input_hash}, sort_keys=True, ensure_ascii=False)
    assert run["run_key"] == hashlib.sha256(recipe.encode()).hexdigest()[:24] and len(run["run_key"]) == 24
    assert run["input_path"] == str(tmp_path / "in.csv") and run["input_hash"] == input_hash and run["n_rows"] == len(ROWS)
    assert json.loads(run["config"])["name"] == "fake-sentiment" and run["config_hash"] == config.fingerprint()
    assert run["task_name"] == "fake-sentiment" and (done, pending) == (set(), list(range(len(ROWS))))
    assert open_run(store, config, full, 3, None)[0] == run_id  # the same key: the same run
    other = load_config(fake_config(guidelines="Another task."))
    assert open_run(store, other, full, 3, None)[0] != run_id
    assert open_run(store, config, read_rows(ROWS[:-1]), 3, [1, 2])[0] != run_id  # another input: another run
    assert store.runs()[-1]["input_path"] is None  # rows passed in memory have no path


def test_a_limited_run_counts_only_its_own_rows_as_done(tmp_path):
    """The whole input labeled once; opened again with its first 3 rows, rows 0-2 are done and none pending (row 3,
    done too, is past the limit)."""
    store, config, task = _parts(tmp_path)
    labelmill.label(fake_config(), ROWS, project=tmp_path / "p.db")
    run_id, done, pending = open_run(store, config, read_rows(ROWS), 3, None)
    assert (done, pending) == ({0, 1, 2}, [])


def test_begin_run_reads_by_the_config_s_dataset_section_and_names_the_input(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes("text|label\ngood fun|positive\ndull|negative\nbad|negative\n".encode("utf-16"))
    store, config, task = _parts(tmp_path, dataset={"encoding": "utf-16", "delimiter": "|"})
    run = begin_run(store, config, task, path, limit=2, started=12.5)
    assert run.full["text"].tolist() == ["good fun", "dull", "bad"] and len(run.frame) == 2 and run.pending == [0, 1]
    assert run.started == 12.5 and run.records == [{"text": "good fun", "label": "positive"}, {"text": "dull", "label": "negative"}]
    assert store.runs()[0]["input_path"] == str(path)
    whole = begin_run(store, config, task, path)
    assert len(whole.frame) == 3 and whole.pending == [0, 1, 2] and time.perf_counter() - whole.started < 60
    named = begin_run(Store(tmp_path / "q.db"), config, task, path, input_name="upload.csv")
    assert named.run_id == 1 and Store(tmp_path / "q.db").runs()[0]["input_path"] == "upload.csv"


def test_announce_sends_the_run_s_figures_and_names_the_model_only_when_rows_are_left(tmp_path):
    store, config, task = _parts(tmp_path)
    events = []
    run = begin_run(store, config, task, ROWS, limit=3)
    announce(run, events.append, "score", "fake-keywords")
    assert events == [RunStarted(run.run_id, 3, 3, False, "score", "fake-keywords")]
    labelmill.label(fake_config(), ROWS, project=tmp_path / "p.db", limit=2)
    again = begin_run(store, config, task, ROWS, limit=2)
    announce(again, events.append, "score", "fake-keywords")
    assert events[-1] == RunStarted(run.run_id, 2, 0, True, "score", "")


def test_finish_run_records_the_status_writes_the_output_and_sends_the_figures(tmp_path):
    store, config, task = _parts(tmp_path)
    labelmill.label(fake_config(), ROWS, project=tmp_path / "p.db", limit=3)  # three rows labeled, in the store
    run = begin_run(store, config, task, ROWS, limit=4, started=time.perf_counter() - 100.0)
    events, tally = [], Tally(model=2, cached=1, cost=0.125)
    result = finish_run(store, config, task, run, tally, emit=events.append, end=Ending(output=tmp_path / "out.csv"))
    (finished,) = events
    assert isinstance(finished, RunFinished) and 100.0 <= finished.wall_s < 160.0
    assert finished == RunFinished(run.run_id, 4, 3, 0, 2, 1, finished.wall_s, 0.125, None)
    assert (result.run_id, result.total, result.labeled, result.failed, result.model_rows, result.cached_rows) == (run.run_id, 4, 3, 0, 2, 1)
    assert (result.wall_s, result.cost_usd, result.stopped) == (finished.wall_s, 0.125, None)
    assert result.output_path == tmp_path / "out.csv" and (tmp_path / "out.csv").exists() and result.columns["label"] == "llm_label"
    assert result.frame["llm_label"].notna().sum() == 3 and store.runs()[0]["status"] == "done"
    assert finish_run(store, config, task, run, tally, emit=events.append).output_path is None


@pytest.mark.parametrize("kind, message, fix", [
    ("budget_exhausted", "stopped at the cost cap: $0.1250 spent of $0.1; 3 of 4 rows labeled and saved (output: {out})",
     "rerun the same command with a higher --max-cost to label the rest (labeled rows are not sent again)"),
    ("server_unavailable", "stopped: the model server kept failing and the circuit breaker gave up; 3 of 4 rows labeled and saved (output: {out})",
     "check the server (model.server.base_url), then rerun the same command to label the rest"),
])
def test_a_clean_stop_keeps_the_status_the_output_and_says_what_was_saved(tmp_path, kind, message, fix):
    store, config, task = _parts(tmp_path)
    labelmill.label(fake_config(), ROWS, project=tmp_path / "p.db", limit=3)
    run = begin_run(store, config, task, ROWS, limit=4)
    events = []
    with pytest.raises(RunStopped) as stop:
        finish_run(store, config, task, run, Tally(model=3, cost=0.125), emit=events.append,
                   end=Ending(output=tmp_path / "out.csv", stopped=kind, max_cost=0.1))
    assert stop.value.kind == kind and str(stop.value.message) == message.format(out=tmp_path / "out.csv") and stop.value.fix == fix
    assert stop.value.result.stopped == kind and stop.value.result.labeled == 3 and events[-1].stopped == kind
    assert store.runs()[0]["status"] == kind and (tmp_path / "out.csv").exists()
