"""Guideline versions in the project store, like commits: content hash, parent, unified diff, rationale,
author, and the figures on dev and held-out rows. One head per guideline name (the config's name).

The version id is the first 12 hex digits of the SHA-256 of the Markdown. `prompt_hash` is the hash the
core stamps on every label made with that guideline (`annotations.guidelines_hash`, the hash of the
system prompt), so each label can be traced to its version.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from labelmill.errors import ConfigError
from labelmill.store import Store
from labelmill.strategies.refine.strategy import STRATEGY

def version_id(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:12]


def unified_diff(old: str, new: str, old_name: str = "a", new_name: str = "b") -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=old_name, tofile=new_name))


@dataclass
class Version:
    id: str
    name: str
    parent: str | None
    content: str
    diff: str
    rationale: str
    author: str
    dev: dict[str, Any] | None
    heldout: dict[str, Any] | None
    prompt_hash: str | None
    created_at: float


class GuidelineVersions:
    """The versions of one guideline (by name) in a project store."""

    def __init__(self, store: Store, name: str):
        self.store = STRATEGY.tables(store)
        self.name = name

    def commit(self, content: str, *, rationale: str, author: str, parent: str | None = None, dev: dict | None = None,
               heldout: dict | None = None, prompt_hash: str | None = None, move_head: bool = True) -> Version:
        """Store `content` as a version (its parent: `parent`, else the head); the same content twice is
        the same version. Moves the head to it unless `move_head` is False."""
        if not rationale.strip():
            raise ConfigError("a guideline version needs a rationale", fix="say why it changed (-m '...')")
        vid = version_id(content)
        existing = self.get(vid, missing_ok=True)
        if existing is None:
            parent = parent if parent is not None else self.head_id()
            before = self.get(parent).content if parent else ""
            diff = unified_diff(before, content, f"{self.name}@{parent or 'empty'}", f"{self.name}@{vid}")
            with self.store.transaction() as db:
                db.execute(
                    "INSERT INTO guideline_versions (id, name, parent, content, diff, rationale, author, dev, heldout, prompt_hash, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (vid, self.name, parent, content, diff, rationale, author, _dump(dev), _dump(heldout), prompt_hash, time.time()),
                )
        if move_head:
            self.checkout(vid)
        return self.get(vid)

    def checkout(self, rev: str) -> Version:
        """Make `rev` (an id or a unique prefix, or HEAD~N) the head."""
        version = self.get(rev)
        self.store.db.execute("INSERT OR REPLACE INTO guideline_heads (name, id, updated_at) VALUES (?, ?, ?)", (self.name, version.id, time.time()))
        return version

    def head_id(self) -> str | None:
        row = self.store.db.execute("SELECT id FROM guideline_heads WHERE name = ?", (self.name,)).fetchone()
        return row[0] if row else None

    def get(self, rev: str | None, missing_ok: bool = False) -> Version | None:
        if rev is None:
            if missing_ok:
                return None
            raise ConfigError(f"guideline {self.name!r} has no versions yet", fix="labelmill guidelines commit CONFIG FILE.md -m 'why'")
        rev = self._resolve(rev)
        cur = self.store.db.execute("SELECT * FROM guideline_versions WHERE name = ? AND id LIKE ?", (self.name, rev + "%"))
        cols = [c[0] for c in cur.description]
        rows = [dict(zip(cols, r)) for r in cur]
        if len(rows) != 1:
            if missing_ok and not rows:
                return None
            raise ConfigError(f"guideline {self.name!r} has {'no' if not rows else 'more than one'} version {rev!r}",
                              fix="labelmill guidelines log CONFIG lists the versions")
        row = rows[0]
        row["dev"], row["heldout"] = _load(row["dev"]), _load(row["heldout"])
        return Version(**row)

    def _resolve(self, rev: str) -> str:
        if rev.upper().startswith("HEAD"):
            head = self.head_id()
            if head is None:
                raise ConfigError(f"guideline {self.name!r} has no versions yet")
            steps = int(rev[5:]) if rev[4:5] == "~" and rev[5:].isdigit() else 0
            for _ in range(steps):
                head = self.get(head).parent
                if head is None:
                    raise ConfigError(f"{rev}: the history of {self.name!r} is shorter than that")
            return head
        return rev

    def log(self) -> list[Version]:
        """The head's history, newest first (its parent, that one's parent, ...)."""
        out, rev = [], self.head_id()
        while rev:
            version = self.get(rev)
            out.append(version)
            rev = version.parent
        return out

    def diff(self, a: str, b: str) -> str:
        va, vb = self.get(a), self.get(b)
        return unified_diff(va.content, vb.content, f"{self.name}@{va.id}", f"{self.name}@{vb.id}")


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _load(value: str | None) -> Any:
    return None if value is None else json.loads(value)
