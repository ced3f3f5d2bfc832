"""review's tables: annotators (a hashed token each) and the review log.

Every decision is one appended row: who, when, the label given, the label it replaced, what the model
said and how sure it was. Nothing is updated or deleted: an undo is a row that names the review it takes
back, and a conflict is settled by a `resolve` row. Each review commits in its own transaction before
the app shows the next row, so a server killed at any moment loses no committed decision.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelmill.errors import InputDataError
from labelmill.store import Store
from labelmill.strategies.review.strategy import STRATEGY

KINDS = ("person", "simulated", "import", "resolve")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass
class Review:
    """One decision on one row, as stored."""

    id: int
    run_id: int
    row_index: int
    row_hash: str
    annotator: str
    kind: str  # person | simulated | import | resolve
    action: str  # accept (kept the label shown) | correct (gave another) | undo
    label: Any
    previous_label: Any
    model_label: Any
    model_confidence: float | None
    undoes: int | None
    created_at: float
    audit: int = 0  # 1: the row was drawn at random for the accuracy estimate (the audit sample)
    audit_weight: float | None = None  # an audit row's weight in the estimate (None: 1, a uniform draw)


class ReviewLog:
    """The reviews of one run in the project store (the review strategy's own tables)."""

    def __init__(self, store: Store, run_id: int):
        self.store = STRATEGY.tables(store)
        self.run_id = run_id
        self._read: list[Review] = []  # the reviews read so far: the table is append-only (an undo is a row too)
        self._derived_at, self._cache = -1, {}  # views of the log (active, ratings, final...), for the reviews read so far
        self._version: tuple[int, int] | None = None  # (the store's data_version, writes through this store) at the last read

    # annotators --------------------------------------------------------------------------------
    def add_annotator(self, name: str, token: str | None = None) -> str:
        """Register `name` (or give it a new token); returns the token, which is stored only hashed."""
        name = name.strip()
        if not allowed_name(name):
            raise InputDataError(f"annotator name {name[:80]!r} is not allowed", fix="use letters, digits, spaces, dots, dashes and underscores (at most 64 characters)")
        token = token or secrets.token_urlsafe(24)
        with self.store.transaction() as db:
            db.execute("DELETE FROM review_annotators WHERE name = ?", (name,))
            db.execute("INSERT INTO review_annotators (name, token_hash, created_at) VALUES (?, ?, ?)", (name, token_hash(token), time.time()))
        return token

    def revoke(self, names: Iterable[str]) -> list[str]:
        """Remove these annotators' tokens (their reviews stay); the names that had one."""
        names = list(names)
        had = [n for n in self.annotators() if n in names]
        with self.store.transaction() as db:
            db.executemany("DELETE FROM review_annotators WHERE name = ?", [(n,) for n in names])
        return had

    def annotator_for(self, token: str | None) -> str | None:
        if not token:
            return None
        row = self.store.db.execute("SELECT name FROM review_annotators WHERE token_hash = ?", (token_hash(token),)).fetchone()
        return row[0] if row else None

    def annotators(self) -> list[str]:
        return [r[0] for r in self.store.db.execute("SELECT name FROM review_annotators ORDER BY name")]

    # writing -------------------------------------------------------------------------------------
    def add(
        self, row_index: int, row_hash: str, annotator: str, label: Any, *, previous: Any = None, model: tuple[Any, float | None] = (None, None),
        kind: str = "person", audit: float = 0.0,
    ) -> int:
        """Commit one decision (its own transaction); returns its id. `model`: what the model said (label,
        confidence); `audit`: not 0 when the row was drawn at random for the accuracy estimate: its weight
        there (True or 1: a uniform draw; else 1 / the draw's chance relative to a uniform draw)."""
        model_label, model_confidence = model
        if kind not in KINDS:
            raise ValueError(f"unknown review kind {kind!r}")
        action = "accept" if previous is not None and same_label(label, previous) else "correct"
        cur = self.store.db.execute(
            "INSERT INTO reviews (run_id, row_index, row_hash, annotator, kind, action, label, previous_label, model_label, model_confidence, created_at, audit,"
            " audit_weight) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.run_id, int(row_index), row_hash, annotator, kind, action, json.dumps(label), _dump(previous), _dump(model_label),
             None if model_confidence is None else float(model_confidence), time.time(), int(bool(audit)),
             float(audit) if audit and float(audit) != 1.0 else None),
        )
        _wrote(self.store)
        return int(cur.lastrowid)

    def add_many(self, items: Iterable[tuple[int, str, str, Any, Any, Any, float | None]], kind: str) -> int:
        """Commit many decisions at once (imports, bulk accepts): (row, row_hash, annotator, label, previous, model_label, model_confidence)."""
        rows = []
        now = time.time()
        for row, rhash, who, label, previous, model_label, model_conf in items:
            action = "accept" if previous is not None and same_label(label, previous) else "correct"
            rows.append((self.run_id, int(row), rhash, who, kind, action, json.dumps(label), _dump(previous), _dump(model_label), model_conf, now))
        with self.store.transaction() as db:
            db.executemany(
                "INSERT INTO reviews (run_id, row_index, row_hash, annotator, kind, action, label, previous_label, model_label, model_confidence, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        _wrote(self.store)
        return len(rows)

    def undo(self, annotator: str) -> Review | None:
        """Take back `annotator`'s latest decision still in force (an `undo` row names it); the undone review."""
        active = [r for r in self.active() if r.annotator == annotator and r.kind != "resolve"]
        return self._take_back(active[-1], annotator) if active else None

    def undo_resolution(self, annotator: str, row_index: int) -> Review | None:
        """Take back the resolution in force on `row_index` (an `undo` row that names it and who took it
        back); the undone resolution, or None when the row has none."""
        found = [r for r in self.active() if r.kind == "resolve" and r.row_index == row_index]
        return self._take_back(found[-1], annotator) if found else None

    def _take_back(self, review: Review, annotator: str) -> Review:
        """Log an `undo` row by `annotator` that names `review`; nothing is deleted."""
        self.store.db.execute(
            "INSERT INTO reviews (run_id, row_index, row_hash, annotator, kind, action, label, previous_label, undoes, created_at)"
            " VALUES (?, ?, ?, ?, ?, 'undo', NULL, ?, ?, ?)",
            (self.run_id, review.row_index, review.row_hash, annotator, review.kind, json.dumps(review.label), review.id, time.time()),
        )
        _wrote(self.store)
        return review

    def resolutions(self) -> list[Review]:
        """The resolutions in force, oldest first (who settled which row, to what)."""
        return [r for r in self.active() if r.kind == "resolve"]

    # reading -------------------------------------------------------------------------------------
    def all(self) -> list[Review]:
        """Every review of the run, oldest first. Only the rows added since the last call are read (another
        process's saves included): nothing in the table is ever changed or deleted."""
        self._read_new()
        return list(self._read)

    def _read_new(self) -> None:
        # nothing new when no other connection committed (data_version) and no log on this store wrote
        version = (self.store.db.execute("PRAGMA data_version").fetchone()[0], _WRITES.get(self.store, 0))
        if version == self._version:
            return
        self._version = version
        last = self._read[-1].id if self._read else -1
        # `+run_id`: walk the primary key from `last` on (the (run_id, row) index would scan the whole run)
        cur = self.store.db.execute("SELECT * FROM reviews WHERE +run_id = ? AND id > ? ORDER BY id", (self.run_id, last))
        cols = [c[0] for c in cur.description]
        for row in cur:
            item = dict(zip(cols, row))
            for key in ("label", "previous_label", "model_label"):
                item[key] = None if item[key] is None else json.loads(item[key])
            self._read.append(Review(**item))

    def _derived(self, key: Any, make: Callable[[], Any]) -> Any:
        """`make()`'s value for the log as it stands, computed once per new review (every request of the app
        asks for the same few views of the log: a log of 100,000 reviews is not read again for each)."""
        self._read_new()
        if self._derived_at != len(self._read):
            new = self._read[self._derived_at :] if self._derived_at >= 0 else []
            old, self._cache = self._cache, {}
            if new and not any(r.action == "undo" for r in new):  # the common case: decisions added, none taken back
                self._cache = _advanced(old, new)
            self._derived_at = len(self._read)
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def active(self) -> list[Review]:
        """Decisions in force (not undone), oldest first."""
        return list(self._active())

    def _active(self) -> list[Review]:  # shared: not to be changed

        def make() -> list[Review]:
            undone = {r.undoes for r in self._read if r.action == "undo"}
            return [r for r in self._read if r.action != "undo" and r.id not in undone]

        return self._derived("active", make)

    def ratings(self) -> Mapping[int, dict[str, Any]]:
        """{row: {annotator: label}}: each annotator's latest decision in force per row (resolutions left
        out). Read-only: the same mapping is shared until the next review."""

        def make() -> Mapping[int, dict[str, Any]]:
            out: dict[int, dict[str, Any]] = {}
            for r in self._active():
                if r.kind != "resolve":
                    out.setdefault(r.row_index, {})[r.annotator] = r.label
            return _Chunked.of(out)

        return self._derived("ratings", make)

    def final(self, min_ratings: int = 1) -> tuple[Mapping[int, Any], Mapping[int, dict[str, Any]]]:
        """(row -> the reviewed label, row -> the ratings still in conflict). A resolution wins; otherwise
        a row with at least `min_ratings` ratings that all agree takes that label, rows whose ratings
        differ are conflicts, and rows with too few ratings are neither. Read-only mappings."""

        def make() -> tuple[Mapping[int, Any], Mapping[int, dict[str, Any]]]:
            resolved, ratings = self._resolved(), self.ratings()
            labels: dict[int, Any] = {}
            conflicts: dict[int, dict[str, Any]] = {}
            for row in set(ratings) | set(resolved):
                _settle(row, ratings.get(row), resolved, min_ratings, labels, conflicts)
            return _Chunked.of(labels), _Chunked.of(conflicts)

        return self._derived(("final", min_ratings), make)

    def rated_by(self, annotator: str) -> int:
        """How many rows `annotator` has a rating in force on (the page's "you reviewed")."""

        def make() -> dict[str, int]:
            counts: dict[str, int] = {}
            for given in self.ratings().values():
                for name in given:
                    counts[name] = counts.get(name, 0) + 1
            return counts

        return self._derived("per_annotator", make).get(annotator, 0)

    def shared(self) -> Mapping[int, dict[str, Any]]:
        """`ratings()` of the rows two annotators or more rated (what agreement is measured on)."""
        return self._derived("shared", lambda: _Chunked.of({row: given for row, given in self.ratings().items() if len(given) >= 2}))

    def _resolved(self) -> Mapping[int, Any]:
        """{row: label} of the resolutions in force."""
        return self._derived("resolved", lambda: _Chunked.of({r.row_index: r.label for r in self._active() if r.kind == "resolve"}))

    def size(self) -> int:
        """How many entries the log holds (decisions and undos): a position for `rows_since`."""
        self._read_new()
        return len(self._read)

    def rows_since(self, position: int) -> set[int]:
        """Rows with a log entry (a decision or an undo) at or after `position`."""
        self._read_new()
        return {r.row_index for r in self._read[position:]}

    def count(self) -> int:
        return len(self._active())

    # the strategy search on the reviews ----------------------------------------------------------
    def save_search(self, reviewed: int, outcome: Mapping[str, Any]) -> None:
        """Keep what a strategy search on `reviewed` reviewed rows found (see `ReviewSession.tune_relabel`)."""
        with self.store.transaction() as db:
            db.execute("INSERT INTO review_searches (run_id, reviewed, outcome, created_at) VALUES (?, ?, ?, ?)",
                       (self.run_id, reviewed, json.dumps(dict(outcome)), time.time()))

    def last_search(self) -> dict[str, Any] | None:
        """The latest strategy search's outcome for this run, None if none ran."""
        row = self.store.db.execute("SELECT outcome FROM review_searches WHERE run_id = ? ORDER BY id DESC LIMIT 1", (self.run_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def audit_rows(self) -> list[int]:
        """Rows whose review in force was an audit draw, in the order they were reviewed."""
        return list(self._audited())

    def audit_weights(self) -> list[float]:
        """Each audit row's weight in the estimate, in the order of `audit_rows` (1 for a uniform draw)."""
        return list(self._audited().values())

    def _audited(self) -> dict[int, float]:  # shared: not to be changed
        return self._derived("audit", lambda: _audit_weights({}, self._active()))


def _audit_weights(old: dict[int, float], reviews: Iterable[Review]) -> dict[int, float]:
    """{row: weight} of the audit draws, in review order: `old` and the first audit review of each other row in
    `reviews` (a copy: views handed out never change)."""
    out = dict(old)
    for r in reviews:
        if r.audit and r.kind != "resolve" and r.row_index not in out:
            out[r.row_index] = 1.0 if r.audit_weight is None else float(r.audit_weight)
    return out


class _Chunked(Mapping):
    """A read-only {row: value} in 256 buckets by row: a copy with a few rows changed copies only their
    buckets, so the log's views advance review by review at any size and a view once handed out never
    changes (another thread may still be reading it)."""

    __slots__ = ("_buckets", "_len")
    WIDTH = 256

    def __init__(self, buckets: list[dict[int, Any]] | None = None, length: int = 0):
        self._buckets = buckets if buckets is not None else [{} for _ in range(self.WIDTH)]
        self._len = length

    @classmethod
    def of(cls, items: Mapping[int, Any]) -> _Chunked:
        out = cls()
        for key, value in items.items():
            out._buckets[key % cls.WIDTH][key] = value
        out._len = len(items)
        return out

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, (int, np.integer)):
            raise KeyError(key)
        return self._buckets[int(key) % self.WIDTH][key]

    def __contains__(self, key: Any) -> bool:
        return isinstance(key, (int, np.integer)) and key in self._buckets[int(key) % self.WIDTH]

    def get(self, key: Any, default: Any = None) -> Any:
        return self._buckets[int(key) % self.WIDTH].get(key, default) if isinstance(key, (int, np.integer)) else default

    def __iter__(self):
        for bucket in self._buckets:
            yield from bucket

    def items(self):  # (the Mapping mixin's would look every key up again)
        for bucket in self._buckets:
            yield from bucket.items()

    def __len__(self) -> int:
        return self._len

    def changed(self, put: Mapping[int, Any], drop: Iterable[int] = ()) -> _Chunked:
        """A copy with the rows in `put` set and those in `drop` removed (only their buckets copied)."""
        buckets, length = list(self._buckets), self._len
        copied: set[int] = set()
        for key in [*drop, *put]:
            b = key % self.WIDTH
            if b not in copied:
                buckets[b] = dict(buckets[b])
                copied.add(b)
        for key in drop:
            length -= buckets[key % self.WIDTH].pop(key, _MISSING) is not _MISSING
        for key, value in put.items():
            length += key not in buckets[key % self.WIDTH]
            buckets[key % self.WIDTH][key] = value
        return _Chunked(buckets, length)

    def __repr__(self) -> str:
        return f"_Chunked({dict(self)!r})"


_MISSING = object()
_WRITES: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()  # reviews written through each store (its connection: data_version misses its own)


def _wrote(store: Any) -> None:
    _WRITES[store] = _WRITES.get(store, 0) + 1


def _advanced(old: dict[Any, Any], new: list[Review]) -> dict[Any, Any]:
    """The log's views (`ReviewLog._derived`) after `new` decisions with no undo among them, from the views
    before: only the rows they touch are looked at again (copies, never changes: a view handed out stays
    as it was). Views it cannot advance are left out (computed again when asked)."""
    out: dict[Any, Any] = {}
    if "active" not in old:
        return out
    out["active"] = old["active"] + new
    if "audit" in old:
        out["audit"] = _audit_weights(old["audit"], new)
    if "ratings" not in old or "resolved" not in old:
        return out
    ratings, resolved = old["ratings"], old["resolved"]
    rated: dict[int, dict[str, Any]] = {}
    settled: dict[int, Any] = {}
    counts = dict(old["per_annotator"]) if "per_annotator" in old else None
    for r in new:
        if r.kind == "resolve":
            settled[r.row_index] = r.label
        else:
            before = rated.get(r.row_index, ratings.get(r.row_index, {}))
            if counts is not None and r.annotator not in before:
                counts[r.annotator] = counts.get(r.annotator, 0) + 1
            rated[r.row_index] = {**before, r.annotator: r.label}
    if counts is not None:
        out["per_annotator"] = counts
    ratings, resolved = ratings.changed(rated), resolved.changed(settled)
    out["ratings"], out["resolved"] = ratings, resolved
    if "shared" in old:
        out["shared"] = old["shared"].changed({row: g for row, g in rated.items() if len(g) >= 2})  # (a decision never takes a rating away)
    touched = set(rated) | set(settled)
    for key, (labels, conflicts) in ((k, v) for k, v in old.items() if isinstance(k, tuple) and k[0] == "final"):
        put_labels: dict[int, Any] = {}
        put_conflicts: dict[int, dict[str, Any]] = {}
        for row in touched:
            _settle(row, ratings.get(row), resolved, key[1], put_labels, put_conflicts)
        out[key] = (labels.changed(put_labels, touched - set(put_labels)), conflicts.changed(put_conflicts, touched - set(put_conflicts)))
    return out


def _settle(row: int, given: dict[str, Any] | None, resolved: Mapping[int, Any], min_ratings: int, labels: dict[int, Any],
            conflicts: dict[int, dict[str, Any]]) -> None:
    """Row `row`'s place in `final`: its resolution, its agreed label, a conflict, or nowhere."""
    if row in resolved:
        labels[row] = resolved[row]
        return
    if not given:
        return
    values = list(given.values())
    if not all(same_label(v, values[0]) for v in values):
        conflicts[row] = given
    elif len(values) >= min_ratings:
        labels[row] = values[0]


def allowed_name(name: str) -> bool:
    """An annotator's name: letters (any script), digits, space, dot, dash, underscore; 1-64 characters,
    starting with a letter or digit. No punctuation that makes a URL or markup (`javascript:alert(1)`), no
    bidi or zero-width controls (a name that displays as another's)."""
    return 0 < len(name) <= 64 and name[0].isalnum() and all(c.isalnum() or c in " .-_" for c in name) and all(c.isprintable() for c in name)


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def same_label(a: Any, b: Any) -> bool:
    """Whether two labels are the same decision (lists, spans and dicts compared as JSON)."""
    if type(a) is str and type(b) is str:  # a closed label set's labels: the common case, without JSON
        return a == b
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
