"""The run loop through the real registry, store and files, with the fake backend as the model."""

import sqlite3

import pandas as pd
import pytest

import labelmill
from labelmill.events import BatchDone, RunFinished, RunStarted
from labelmill.store.db import Store

from conftest import ROWS, fake_config


def calls(path):
    return path.read_text().split() if path.exists() else []


def test_label_writes_typed_columns_next_to_the_input(tmp_path):
    out = tmp_path / "out.csv"
    result = labelmill.label(fake_config(), ROWS, output=out, project=tmp_path / "p.db")
    frame = pd.read_csv(out, keep_default_na=False)
    assert list(frame.columns) == ["text", "label", "llm_label", "llm_confidence", "llm_error"]
    assert frame.llm_label.tolist()[:4] == ["positive", "negative", "positive", "negative"]
    assert (frame.llm_confidence.astype(float) > 0.5).all() and (frame.llm_error == "").all()
    assert result.labeled == len(ROWS) and result.failed == 0


def test_added_columns_never_overwrite_input_columns(tmp_path):
    rows = [dict(r, llm_label="mine") for r in ROWS]
    result = labelmill.label(fake_config(), rows, project=tmp_path / "p.db")
    assert result.frame.llm_label.eq("mine").all() and result.columns["label"] == "llm_label_2"
    metrics = labelmill.evaluate(fake_config(), result.frame)
    assert metrics["accuracy"] == 1.0  # the input column "mine" would score 0: eval found ours


def test_rerun_resumes_without_calling_the_model(tmp_path):
    log = tmp_path / "calls.log"
    config = fake_config(model={"params": {"keywords": {"positive": ["good"]}, "call_log": str(log)}})
    first = labelmill.label(config, ROWS, project=tmp_path / "p.db", limit=3)
    assert len(calls(log)) == 3 and first.model_rows == 3
    events = []
    second = labelmill.label(config, ROWS, project=tmp_path / "p.db", on_event=events.append)
    assert len(calls(log)) == len(ROWS)  # only the 4 new rows went to the model
    assert second.model_rows == 4 and second.total == len(ROWS)
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.resumed and started.pending == 4
    third = labelmill.label(config, ROWS, project=tmp_path / "p.db")
    assert third.model_rows == 0 and len(calls(log)) == len(ROWS)


def test_cache_is_shared_across_runs_and_identical_prompts_go_once(tmp_path):
    log = tmp_path / "calls.log"
    config = fake_config(model={"params": {"keywords": {"positive": ["good"]}, "call_log": str(log)}})
    rows = ROWS + ROWS  # every prompt twice
    result = labelmill.label(config, rows, project=tmp_path / "p.db")
    assert len(calls(log)) == len(ROWS) and result.model_rows == len(ROWS)
    other_output = labelmill.label(dict(config, output={"label_column": "pred"}), rows, project=tmp_path / "p.db")
    assert other_output.model_rows == 0 and len(calls(log)) == len(ROWS)


def test_changed_guidelines_change_the_cache_key(tmp_path):
    log = tmp_path / "calls.log"
    config = fake_config(model={"params": {"call_log": str(log)}})
    labelmill.label(config, ROWS[:2], project=tmp_path / "p.db")
    labelmill.label(dict(config, guidelines="Other words."), ROWS[:2], project=tmp_path / "p.db")
    assert len(calls(log)) == 4


def test_generation_answers_are_parsed_and_failures_typed(tmp_path):
    config = fake_config(model={"method": "generate", "params": {"style": "chatty", "garbage_every": 3, "keywords": {"positive": ["good", "fun", "great"]}}})
    out = tmp_path / "out.jsonl"
    result = labelmill.label(config, ROWS, output=out, project=tmp_path / "p.db")
    frame = pd.read_json(out, lines=True)
    failed = frame[frame.llm_error != ""]
    assert result.failed == len(failed) > 0
    assert failed.llm_label.isna().all() and failed.llm_error.str.startswith("no_label").all()
    ok = frame[frame.llm_error == ""]
    assert set(ok.llm_label) <= {"positive", "negative"} and len(ok) > 0
    metrics = labelmill.evaluate(config, out)
    assert metrics["completion_rate"] == pytest.approx(len(ok) / len(ROWS))
    assert metrics["failures"] == {"no_label": len(failed)}


def test_every_annotation_keeps_its_provenance(tmp_path):
    labelmill.label(fake_config(), ROWS, project=tmp_path / "p.db")
    with Store(tmp_path / "p.db") as store:
        run = store.runs()[0]
        rows = list(store.annotations(run["id"]))
    assert len(rows) == len(ROWS) and run["status"] == "done"
    first = rows[0]
    assert first.model_id == "fake-keywords" and first.backend == "fake" and first.method == "score"
    assert first.model_sha256 and first.prompt_hash and first.guidelines_hash and first.cache_key
    assert set(first.distribution) == {"positive", "negative"} and first.source == "llm"
    assert first.signals["top_prob"] == pytest.approx(first.confidence)


def test_events_report_progress(tmp_path):
    events = []
    labelmill.label(fake_config(), ROWS, project=tmp_path / "p.db", on_event=events.append)
    batches = [e for e in events if isinstance(e, BatchDone)]
    assert [b.done for b in batches] == [4, 7]
    assert isinstance(events[-1], RunFinished) and events[-1].labeled == len(ROWS)


def test_multilabel_end_to_end(tmp_path):
    config = fake_config(
        task="multilabel", labels=["good", "bad", "fun"], gold_column="labels",
        model={"method": "auto", "params": {"keywords": {}}},
    )
    rows = [{"text": "good fun", "labels": "good|fun"}, {"text": "bad", "labels": "bad"}]
    result = labelmill.label(config, rows, project=tmp_path / "p.db")
    # the fake answers one label: 'good' (first of the tied best) for row 1, 'bad' for row 2
    assert result.frame.llm_label.tolist() == ["good", "bad"]
    metrics = labelmill.evaluate(config, result.frame)
    assert metrics["accuracy"] == 0.5 and metrics["completion_rate"] == 1.0
    assert metrics["micro_f1"] == pytest.approx(0.8)  # tp 2, fp 0, fn 1 ('fun' missed)


def test_plan_counts_tokens_without_labeling(tmp_path):
    log = tmp_path / "calls.log"
    result = labelmill.plan(fake_config(model={"params": {"call_log": str(log)}}), ROWS)
    assert result["rows"] == len(ROWS) and result["method"] == "score" and "a good and fun film" in result["prompt_preview"]
    assert result["tokens_evaluated_with_prefix_reuse"] < result["prompt_tokens_total"]
    assert not log.exists()


def test_store_schema_is_versioned(tmp_path):
    from labelmill.store.db import MIGRATIONS
    from labelmill.core.strategy import get_strategy

    with Store(tmp_path / "p.db") as store:
        assert store.schema_version() == len(MIGRATIONS) == 6
        # a strategy's tables come from its own migrations, on first use, tracked per strategy
        assert "freeal_rounds" not in {r[0] for r in store.db.execute("SELECT name FROM sqlite_master")}
        get_strategy("freeal").tables(store)
        assert store.strategy_schema_version("freeal") == 1
        assert store.db.execute("SELECT COUNT(*) FROM freeal_rounds").fetchone()[0] == 0
    # a project file from before the embeddings, strategy migrations and explanations (schema 1) is upgraded in place
    db = sqlite3.connect(tmp_path / "p.db")
    for table in ("embeddings", "strategy_migrations"):
        db.execute(f"DROP TABLE {table}")
    db.execute("ALTER TABLE annotations DROP COLUMN explanation")
    db.execute("DELETE FROM migrations WHERE version >= 2")
    db.commit()
    db.close()
    with Store(tmp_path / "p.db") as store:
        assert store.schema_version() == 6 and store.embeddings_get(["x"]) == {}
        assert "explanation" in [c[1] for c in store.db.execute("PRAGMA table_info(annotations)")]
        # the FreeAL tables an older labelmill made (its core migration 4) are kept, and adopted as they are
        get_strategy("freeal").tables(store)
        assert store.strategy_schema_version("freeal") == 1
    db = sqlite3.connect(tmp_path / "p.db")
    db.execute("INSERT INTO migrations VALUES (99, 0)")
    db.commit()
    db.close()
    with pytest.raises(labelmill.StoreError, match="newer labelmill"):
        Store(tmp_path / "p.db")
