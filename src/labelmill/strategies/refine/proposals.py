"""Proposed guideline edits waiting for a person, in the project store: the review app's "guideline" page
shows each with its evidence, a person accepts, edits or rejects it, and the next `labelmill refine ...
--review` run carries out those decisions.

The loop is deterministic through the project's cache (a rerun asks the models nothing twice), so the rerun
proposes the same edits again and finds each one's decision here by its key: the guideline version it
edits, the kind of edit, its target and its text. A proposal with no decision yet keeps the loop waiting
(`ReviewDecisions.waiting`); an accepted or edited one goes on to be scored on the dev rows like any other,
with the person named as its author.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from typing import Any

from labelmill.errors import InputDataError
from labelmill.store import Store
from labelmill.strategies.refine.strategy import STRATEGY


ACTIONS = ("accept", "edit", "reject")


@dataclass
class Proposal:
    key: str
    name: str
    base: str | None
    kind: str
    target: str | None
    text: str
    evidence: str
    author: str
    status: str  # pending, accepted, edited, rejected
    decided_text: str | None
    decided_by: str | None
    created_at: float
    decided_at: float | None


def proposal_key(name: str, base: str | None, kind: str, target: str | None, text: str) -> str:
    return hashlib.sha256("\x1f".join([name, base or "", kind, target or "", text]).encode()).hexdigest()[:16]


class Proposals:
    """The proposals of one guideline (by name) in a project store."""

    def __init__(self, store: Store, name: str):
        self.store = STRATEGY.tables(store)
        self.name = name

    def record(self, base: str | None, edit: Any) -> Proposal:
        """Store `edit` (a refine `Edit`) as pending unless it is there already; return it as stored."""
        key = proposal_key(self.name, base, edit.kind, edit.target, edit.text)
        with self.store.transaction() as db:
            db.execute("INSERT OR IGNORE INTO refine_proposals (key, name, base, kind, target, text, evidence, author, created_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (key, self.name, base, edit.kind, edit.target, edit.text, edit.evidence, edit.author, time.time()))
        return self.get(key)

    def get(self, key: str) -> Proposal:
        cur = self.store.db.execute("SELECT * FROM refine_proposals WHERE name = ? AND key = ?", (self.name, key))
        row = cur.fetchone()
        if row is None:
            raise InputDataError(f"no proposal {key!r} for guideline {self.name!r}", fix="reload the guideline page: the proposals listed there are the ones stored")
        return Proposal(**dict(zip([c[0] for c in cur.description], row)))

    def list(self, status: str | None = None) -> list[Proposal]:
        sql, args = "SELECT * FROM refine_proposals WHERE name = ?", [self.name]
        if status:
            sql, args = sql + " AND status = ?", [*args, status]
        cur = self.store.db.execute(sql + " ORDER BY created_at, rowid", args)
        cols = [c[0] for c in cur.description]
        return [Proposal(**dict(zip(cols, r))) for r in cur]

    def decide(self, key: str, action: str, person: str, text: str | None = None) -> Proposal:
        """A person's decision: accept, edit (with the new wording) or reject. A later decision replaces an earlier one."""
        if action not in ACTIONS:
            raise InputDataError(f"unknown action {action!r}", fix=f"one of {', '.join(ACTIONS)}")
        self.get(key)
        wording = (text or "").strip()
        if action == "edit" and not wording:
            raise InputDataError("an edit needs the new wording")
        if len(wording) > 1000:
            raise InputDataError("a rule or definition is one or two sentences (at most 1,000 characters)")
        status = {"accept": "accepted", "edit": "edited", "reject": "rejected"}[action]
        with self.store.transaction() as db:
            db.execute("UPDATE refine_proposals SET status = ?, decided_text = ?, decided_by = ?, decided_at = ? WHERE name = ? AND key = ?",
                       (status, wording if action == "edit" else None, person, time.time(), self.name, key))
        return self.get(key)


class ReviewDecisions:
    """refine's `decide` for people who answer in the review app: records each proposal, applies the decision
    made there, and counts the proposals still waiting (the loop stops on them)."""

    def __init__(self, project: Any, name: str):
        self.project, self.name = project, name
        self.waiting = 0

    def __call__(self, edit: Any) -> Any:
        from labelmill.strategies.refine.versions import GuidelineVersions

        with Store(self.project) as store:
            base = GuidelineVersions(store, self.name).head_id()
            stored = Proposals(store, self.name).record(base, edit)
        if stored.status == "pending":
            self.waiting += 1
            return None
        if stored.status == "rejected":
            return None
        if stored.status == "edited":
            return replace(edit, text=stored.decided_text or edit.text, author=str(stored.decided_by))
        return replace(edit, author=f"{edit.author}, accepted by {stored.decided_by}")
