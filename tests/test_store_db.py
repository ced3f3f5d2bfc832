"""The project store itself, on a real SQLite file: the cache, runs resumed, retried failures, derived rows,
transactions, embeddings, strategy migrations and counts, each checked against values written by hand."""

from __future__ import annotations

import numpy as np
import pytest

from labelmill.errors import StoreError
from labelmill.store.db import Store
from labelmill.store.tables import Annotation

from conftest import hand_annotation


def _a(i: int, label=None, error=None, model="m") -> Annotation:
    return hand_annotation(i, label, error=error, confidence=0.8 if label else None, distribution={"a": 0.8, "b": 0.2} if label else None,
                           model_id=model, prompt_hash=f"p{i}", guidelines_hash="g1" if i % 2 else "g2")


def _run(store: Store, key: str = "r", n: int = 3) -> int:
    return store.open_run(run_key=key, task_name="t", config={"b": 1, "a": 2}, config_hash="c", input_path=None, input_hash="i", n_rows=n)


def test_runs_resume_by_key_and_keep_the_larger_row_count(tmp_path):
    with Store(tmp_path / "p.db") as store:
        first = _run(store, n=5)
        store.set_run_status(first, "done")
        assert _run(store, n=3) == first  # the same key resumes the run
        run = store.runs()[0]
        assert (run["n_rows"], run["status"], run["config"]) == (5, "running", '{"a": 2, "b": 1}')
        assert _run(store, n=9) == first and store.runs()[0]["n_rows"] == 9
        assert _run(store, key="other") != first and len(store.runs()) == 2


def test_a_transient_failure_is_sent_again_and_replaced_a_label_never_is(tmp_path):
    with Store(tmp_path / "p.db") as store:
        run = _run(store)
        store.save_batch(run, [_a(0, "a"), _a(1, error="timeout"), _a(2, error="unparseable")], [("k0", "fake", "m", "score", {"x": 1})])
        assert store.done_rows(run) == {0, 2}  # the timeout is sent again; a lasting failure is not
        store.save_batch(run, [_a(0, "b"), _a(1, "b")], [])
        got = {s.row_index: s for s in store.annotations(run)}
        assert got[0].label == "a" and got[1].label == "b" and got[1].error is None and store.done_rows(run) == {0, 1, 2}
        assert got[0].distribution == {"a": 0.8, "b": 0.2} and got[0].signals == {} and got[2].label is None
        # an ensemble's derived rows replace whatever the run held
        store.save_batch(run, [_a(0, "b", model="ensemble")], [], derived=True)
        assert next(iter(store.annotations(run))).label == "b"
        assert store.cache_get(["k0", "k0", "missing"]) == {"k0": {"x": 1}}
        assert store.count_by_guidelines(["g1", "g2", "g3"]) == {"g1": 1, "g2": 2, "g3": 0} and store.count_by_guidelines([]) == {}


def test_the_cache_and_embeddings_read_back_past_a_chunk(tmp_path):
    keys = [f"key{i}" for i in range(1203)]
    with Store(tmp_path / "p.db") as store:
        store.cache_put([(k, "fake", "m", "gen", {"text": k}) for k in keys])
        store.cache_put([("key0", "fake", "m", "gen", {"text": "again"})])  # a key is written once
        found = store.cache_get(keys[::-1])
        assert len(found) == 1203 and found["key1202"] == {"text": "key1202"} and found["key0"] == {"text": "key0"}
        vectors = {k: np.arange(3, dtype=np.float32) + i for i, k in enumerate(keys[:1100])}
        store.embeddings_put("enc", vectors)
        back = store.embeddings_get(keys)
        assert len(back) == 1100 and back["key1099"].tolist() == [1099.0, 1100.0, 1101.0]


def test_a_transaction_rolls_back_on_an_error(tmp_path):
    with Store(tmp_path / "p.db") as store:
        run = _run(store)
        with pytest.raises(RuntimeError):
            with store.transaction() as db:
                db.execute("UPDATE runs SET status = 'broken' WHERE id = ?", (run,))
                raise RuntimeError("crash mid-batch")
        assert store.runs()[0]["status"] == "running"


def test_strategy_migrations_run_once_in_order_and_refuse_a_newer_file(tmp_path):
    steps = ["CREATE TABLE s_one (x INTEGER)", "ALTER TABLE s_one ADD COLUMN y INTEGER; CREATE TABLE s_two (z TEXT)"]
    with Store(tmp_path / "p.db") as store:
        assert store.strategy_schema_version("s") == 0 and store.schema_version() == 6
        store.migrate_strategy("s", steps[:1])
        assert store.strategy_schema_version("s") == 1
        store.migrate_strategy("s", steps)  # only the second runs (the first would fail: the table exists)
        assert store.strategy_schema_version("s") == 2 and store.strategy_schema_version("other") == 0
        store.migrate_strategy("s", steps)  # up to date: nothing runs, nothing refused
        store.db.execute("INSERT INTO s_one (x, y) VALUES (1, 2)")
        store.db.execute("INSERT INTO s_two (z) VALUES ('ok')")
        with pytest.raises(StoreError, match=r"s tables from a newer labelmill \(schema 2 > 1\)"):
            store.migrate_strategy("s", steps[:1])


def test_a_broken_file_is_a_store_error_with_a_fix(tmp_path):
    bad = tmp_path / "p.db"
    bad.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="cannot open project store") as info:
        Store(bad)
    assert "another --project" in info.value.fix


def test_a_store_opens_under_new_folders_and_a_shared_one_serves_other_threads(tmp_path):
    import sqlite3
    import threading

    deep = tmp_path / "a" / "b" / "p.db"
    with Store(deep) as store:
        run = _run(store, n=5)
        store.save_batch(run, [_a(0, "a"), _a(1, "b"), _a(2, "a")], [])
        assert store.label_matrix([run], 5, ["a", "b"]).tolist() == [[0], [1], [0], [-1], [-1]]  # rows past the last stored abstain
    seen: list = []

    def use(store: Store) -> None:
        try:
            seen.append(len(store.runs()))
        except sqlite3.ProgrammingError as exc:
            seen.append(type(exc).__name__)

    for shared in (True, False):
        store = Store(deep, shared=shared)
        worker = threading.Thread(target=use, args=(store,))
        worker.start()
        worker.join()
        store.close()
    assert seen == [1, "ProgrammingError"]  # the review app's threads share one; elsewhere a thread opens its own
