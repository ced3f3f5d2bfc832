"""The project store: one SQLite file holding the answer cache, annotations with provenance, and runs.

Every batch of annotations is committed together with the cached model answers that produced it, in
one transaction, so a crash (kill -9 included) loses at most the batch in flight and never leaves a
half-written row.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labelmill.errors import TRANSIENT_ERRORS, StoreError
from labelmill.store.tables import Annotation, LabelTable, StoredLabel, label_matrix, label_table

MIGRATIONS: list[str] = [
    # 1: cache, runs, annotations
    """
    CREATE TABLE cache (
        key TEXT PRIMARY KEY,
        backend TEXT NOT NULL,
        model TEXT NOT NULL,
        kind TEXT NOT NULL,
        response TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        run_key TEXT NOT NULL UNIQUE,
        task_name TEXT NOT NULL,
        config TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        input_path TEXT,
        input_hash TEXT NOT NULL,
        n_rows INTEGER NOT NULL,
        status TEXT NOT NULL,
        started_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE annotations (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        row_index INTEGER NOT NULL,
        row_hash TEXT NOT NULL,
        label TEXT,
        error TEXT,
        error_detail TEXT,
        confidence REAL,
        distribution TEXT,
        signals TEXT,
        raw_answer TEXT,
        method TEXT NOT NULL,
        backend TEXT NOT NULL,
        model_id TEXT NOT NULL,
        model_sha256 TEXT,
        prompt_hash TEXT NOT NULL,
        guidelines_hash TEXT NOT NULL,
        cache_key TEXT NOT NULL,
        cached INTEGER NOT NULL,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        latency_s REAL,
        source TEXT NOT NULL DEFAULT 'llm',
        created_at REAL NOT NULL,
        UNIQUE (run_id, row_index)
    );
    CREATE INDEX annotations_run ON annotations(run_id);
    """,
    # 2: sentence embeddings for few-shot selection, by (model, text) hash
    """
    CREATE TABLE embeddings (
        key TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        vector BLOB NOT NULL
    );
    """,
    # 3 and 4 made the tune and FreeAL tables; those now come from each strategy's own migrations
    # (strategies/<name>/strategy.py), so a new project file gets them when the strategy first runs
    "SELECT 1",
    "SELECT 1",
    # 5: the explanation a chain-of-thought run wrote before its answer
    """
    ALTER TABLE annotations ADD COLUMN explanation TEXT;
    """,
    # 6: which of each strategy's own migrations this file has (Store.migrate_strategy)
    """
    CREATE TABLE strategy_migrations (
        strategy TEXT NOT NULL,
        version INTEGER NOT NULL,
        applied_at REAL NOT NULL,
        PRIMARY KEY (strategy, version)
    );
    """,
]


class Store:
    """A SQLite project file; safe to open from a resumed run after any crash."""

    def __init__(self, path: str | Path, *, shared: bool = False):
        """`shared`: the connection may be used from other threads (the caller serialises the calls,
        as the review app does behind its lock)."""
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=not shared)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open project store {self.path}: {exc}", fix="give another --project path, or move the damaged file away") from None

    # schema ----------------------------------------------------------------------------------
    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
        done = {row[0] for row in self.db.execute("SELECT version FROM migrations")}
        if done and max(done) > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} was written by a newer labelmill (schema {max(done)} > {len(MIGRATIONS)})",
                fix="upgrade labelmill, or use another --project file",
            )
        self._apply(MIGRATIONS, done, lambda version: self.db.execute("INSERT INTO migrations VALUES (?, ?)", (version, time.time())))

    def _apply(self, migrations: Sequence[str], done: set[int], record: Callable[[int], object]) -> None:
        """Run each migration not in `done`, with its record, in a transaction of its own."""
        for version, sql in enumerate(migrations, start=1):
            if version in done:
                continue
            with self.transaction():
                for statement in sql.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                record(version)

    def migrate_strategy(self, name: str, migrations: Sequence[str]) -> None:
        """Apply a strategy's own migrations (its tables) that this file lacks, each in its own transaction."""
        done = {row[0] for row in self.db.execute("SELECT version FROM strategy_migrations WHERE strategy = ?", (name,))}
        if done and max(done) > len(migrations):
            raise StoreError(
                f"{self.path} holds {name} tables from a newer labelmill (schema {max(done)} > {len(migrations)})",
                fix="upgrade labelmill, or use another --project file",
            )
        self._apply(migrations, done, lambda version: self.db.execute("INSERT INTO strategy_migrations VALUES (?, ?, ?)", (name, version, time.time())))

    def strategy_schema_version(self, name: str) -> int:
        return self.db.execute("SELECT COALESCE(MAX(version), 0) FROM strategy_migrations WHERE strategy = ?", (name,)).fetchone()[0]

    def schema_version(self) -> int:
        return self.db.execute("SELECT COALESCE(MAX(version), 0) FROM migrations").fetchone()[0]

    class _Tx:
        def __init__(self, db: sqlite3.Connection):
            self.db = db

        def __enter__(self):
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type, *_):
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def transaction(self) -> _Tx:
        return Store._Tx(self.db)

    # cache -----------------------------------------------------------------------------------
    def cache_get(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, response in self.db.execute(f"SELECT key, response FROM cache WHERE key IN ({marks})", chunk):
                found[key] = json.loads(response)
        return found

    def cache_put(self, entries: list[tuple[str, str, str, str, dict]]) -> None:
        """Cache model answers that belong to no annotation (e.g. demos the model wrote)."""
        with self.transaction() as db:
            _insert_cache(db, entries, time.time())

    # runs ------------------------------------------------------------------------------------
    def open_run(self, *, run_key: str, task_name: str, config: dict, config_hash: str, input_path: str | None, input_hash: str, n_rows: int) -> int:
        """The run with this key (resumed), or a new one."""
        row = self.db.execute("SELECT id, n_rows FROM runs WHERE run_key = ?", (run_key,)).fetchone()
        now = time.time()
        if row:
            run_id, known_rows = row
            self.db.execute(
                "UPDATE runs SET n_rows = ?, status = 'running', updated_at = ? WHERE id = ?",
                (max(known_rows, n_rows), now, run_id),
            )
            return run_id
        cur = self.db.execute(
            "INSERT INTO runs (run_key, task_name, config, config_hash, input_path, input_hash, n_rows, status, started_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
            (run_key, task_name, json.dumps(config, sort_keys=True), config_hash, input_path, input_hash, n_rows, now, now),
        )
        return int(cur.lastrowid)

    def set_run_status(self, run_id: int, status: str) -> None:
        self.db.execute("UPDATE runs SET status = ?, updated_at = ? WHERE id = ?", (status, time.time(), run_id))

    def runs(self) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT * FROM runs ORDER BY id")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, row)) for row in cur]

    # annotations -----------------------------------------------------------------------------
    def done_rows(self, run_id: int) -> set[int]:
        """Rows with a label or a lasting failure; rows whose request failed transiently (a timeout, a 5xx) are sent again."""
        marks = ",".join("?" * len(TRANSIENT_ERRORS))
        query = f"SELECT row_index FROM annotations WHERE run_id = ? AND (error IS NULL OR error NOT IN ({marks}))"
        return {r[0] for r in self.db.execute(query, (run_id, *sorted(TRANSIENT_ERRORS)))}

    def save_batch(self, run_id: int, annotations: list[Annotation], cache_entries: list[tuple[str, str, str, str, dict]], *, derived: bool = False) -> None:
        """Commit annotations and the model answers behind them atomically.

        `derived`: the annotations are computed from other runs' (an ensemble's), so they replace the
        run's rows whatever they held; the labels they come from stay in those runs.
        """
        now = time.time()
        with self.transaction() as db:
            _insert_cache(db, cache_entries, now)
            if derived:
                db.executemany("DELETE FROM annotations WHERE run_id = ? AND row_index = ?", [(run_id, a.row_index) for a in annotations])
            # a row retried after a transient failure replaces that failure (never a label)
            marks = ",".join("?" * len(TRANSIENT_ERRORS))
            db.executemany(
                f"DELETE FROM annotations WHERE run_id = ? AND row_index = ? AND error IN ({marks})",
                [(run_id, a.row_index, *sorted(TRANSIENT_ERRORS)) for a in annotations],
            )
            db.executemany(
                "INSERT OR IGNORE INTO annotations (run_id, row_index, row_hash, label, error, error_detail, confidence, distribution,"
                " signals, raw_answer, method, backend, model_id, model_sha256, prompt_hash, guidelines_hash, cache_key, cached,"
                " prompt_tokens, completion_tokens, latency_s, source, created_at, explanation)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id, a.row_index, a.row_hash, None if a.label is None else json.dumps(a.label), a.error, a.error_detail,
                        a.confidence, None if a.distribution is None else json.dumps(a.distribution),
                        json.dumps(a.signals or {}), a.raw_answer, a.method, a.backend, a.model_id, a.model_sha256, a.prompt_hash,
                        a.guidelines_hash, a.cache_key, int(a.cached), a.prompt_tokens, a.completion_tokens, a.latency_s, a.source, now,
                        a.explanation,
                    )
                    for a in annotations
                ],
            )
            db.execute("UPDATE runs SET updated_at = ? WHERE id = ?", (now, run_id))

    def embeddings_get(self, keys: list[str]) -> dict[str, Any]:
        import numpy as np

        out = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in self.db.execute(f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", chunk):
                out[key] = np.frombuffer(blob, dtype=np.float32)
        return out

    def embeddings_put(self, model: str, vectors: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO embeddings (key, model, vector) VALUES (?, ?, ?)", [(k, model, v.tobytes()) for k, v in vectors.items()])

    def annotations(self, run_id: int) -> Iterator[StoredLabel]:
        """A run's stored labels, typed, in row order."""
        cur = self.db.execute("SELECT * FROM annotations WHERE run_id = ? ORDER BY row_index", (run_id,))
        cols = [c[0] for c in cur.description]
        for row in cur:
            item = dict(zip(cols, row))
            for key in ("label", "distribution", "signals"):
                if item[key] is not None:
                    item[key] = json.loads(item[key])
            yield StoredLabel.from_row(item)

    def count_by_guidelines(self, guidelines_hashes: Sequence[str]) -> dict[str, int]:
        """How many stored labels were made with each system-prompt hash (`annotations.guidelines_hash`)."""
        if not guidelines_hashes:
            return {}
        marks = ",".join("?" * len(guidelines_hashes))
        rows = self.db.execute(f"SELECT guidelines_hash, COUNT(*) FROM annotations WHERE guidelines_hash IN ({marks}) GROUP BY guidelines_hash",
                               list(guidelines_hashes)).fetchall()
        return {h: 0 for h in guidelines_hashes} | {h: int(n) for h, n in rows}

    def labels(self, run_id: int, n_rows: int | None = None, names: Sequence[str] = ()) -> LabelTable:
        """A run's labels over rows 0..n_rows-1 as arrays: labels (n,), label ids (n,), probs (n, k), provenance."""
        return label_table(list(self.annotations(run_id)), n_rows, names)

    def label_matrix(self, run_ids: Sequence[int], n_rows: int, names: Sequence[str]) -> np.ndarray:
        """L[n, m] over the runs `run_ids` (one column each), -1 where a run has no label for a row."""
        return label_matrix([self.labels(r, n_rows, names) for r in run_ids])

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _insert_cache(db: sqlite3.Connection, entries: list[tuple[str, str, str, str, dict]], now: float) -> None:
    db.executemany(
        "INSERT OR IGNORE INTO cache (key, backend, model, kind, response, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(k, b, m, kind, json.dumps(resp), now) for k, b, m, kind, resp in entries],
    )
