"""refine's registration: its tables (guideline versions and heads) and the `labelmill guidelines`
command group (log, show, diff, checkout, commit), which work like their git namesakes."""

from __future__ import annotations

from typing import Any

from labelmill.core.strategy import Strategy

# 1: guideline versions and heads (versions.py); 2: proposed edits waiting for a person (proposals.py)
MIGRATIONS = [
    """
    CREATE TABLE guideline_versions (
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        parent TEXT,
        content TEXT NOT NULL,
        diff TEXT NOT NULL,
        rationale TEXT NOT NULL,
        author TEXT NOT NULL,
        dev TEXT,
        heldout TEXT,
        prompt_hash TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (name, id)
    );
    CREATE TABLE guideline_heads (
        name TEXT PRIMARY KEY,
        id TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
]

MIGRATIONS.append("""
CREATE TABLE refine_proposals (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    base TEXT,
    kind TEXT NOT NULL,
    target TEXT,
    text TEXT NOT NULL,
    evidence TEXT NOT NULL,
    author TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    decided_text TEXT,
    decided_by TEXT,
    created_at REAL NOT NULL,
    decided_at REAL
);
CREATE INDEX refine_proposals_name ON refine_proposals (name, status);
""")


class RefineStrategy(Strategy):
    name = "refine"

    migrations = MIGRATIONS

    def command(self) -> Any:
        return ["labelmill.strategies.refine.cli:guidelines_group", "labelmill.strategies.refine.cli:refine_command"]


STRATEGY = RefineStrategy()
