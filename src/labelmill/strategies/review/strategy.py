"""review's registration: its tables (annotators, the review log), its report section (read from the
review columns of an export it wrote) and the `labelmill review` command."""

from __future__ import annotations

from typing import Any

from labelmill.core.strategy import EvalContext, Strategy

# the tables the review log uses (log.py): annotators with a hashed token each, the append-only review log,
# and the strategy searches run on the reviews
MIGRATIONS = [
    """
    CREATE TABLE review_annotators (
        name TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL
    );
    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        row_index INTEGER NOT NULL,
        row_hash TEXT NOT NULL,
        annotator TEXT NOT NULL,
        kind TEXT NOT NULL,
        action TEXT NOT NULL,
        label TEXT,
        previous_label TEXT,
        model_label TEXT,
        model_confidence REAL,
        undoes INTEGER REFERENCES reviews(id),
        created_at REAL NOT NULL
    );
    CREATE INDEX reviews_run_row ON reviews(run_id, row_index);
    """,
    # 2: a review of a row drawn at random for the accuracy estimate (the audit sample) says so
    "ALTER TABLE reviews ADD COLUMN audit INTEGER NOT NULL DEFAULT 0;",
    # 3: the strategy search on the reviews (what it found sets the relabel step's demos when the session opens again)
    """
    CREATE TABLE review_searches (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        reviewed INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
    # 4: an audit row drawn with a chance other than uniform keeps its weight (1 / that chance relative to a uniform draw)
    "ALTER TABLE reviews ADD COLUMN audit_weight REAL;",
]


class ReviewStrategy(Strategy):
    name = "review"

    migrations = MIGRATIONS

    def evaluate(self, context: EvalContext) -> dict[str, Any]:
        frame = context.frame
        if "review_status" not in frame.columns or "final_label" not in frame.columns:
            return {}
        reviewed = (frame["review_status"] == "reviewed").to_numpy()
        final = frame["final_label"].tolist()
        ok = [g is not None and context.task.is_correct(g, f) for g, f in zip(context.gold, final)]
        gold_rows = [g is not None for g in context.gold]
        n = max(1, sum(gold_rows))
        return {
            "review_share_reviewed": float(reviewed.mean()) if len(reviewed) else 0.0,
            "review_final_accuracy": sum(ok) / n,
        }

    def report_section(self, metrics: dict[str, Any]) -> str | None:
        if "review_final_accuracy" not in metrics:
            return None
        return (f"<h2>Review</h2><p>Rows reviewed by people: {metrics['review_share_reviewed']:.3f}. "
                f"Accuracy of the final labels (reviewed where reviewed, the model's elsewhere): {metrics['review_final_accuracy']:.3f}.</p>")

    def command(self) -> Any:
        return "labelmill.strategies.review.cli:review_command"


STRATEGY = ReviewStrategy()
