"""review's registration: its tables (annotators, the review log), its report section (read from the
review columns of an export it wrote) and the `labelmill review` command."""

from __future__ import annotations

from typing import Any

from labelmill.strategies.base import EvalContext, Strategy


class ReviewStrategy(Strategy):
    name = "review"

    @property
    def migrations(self):  # noqa: D401 - the list lives with the log that uses it
        from labelmill.strategies.review.log import MIGRATIONS

        return MIGRATIONS

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
        from labelmill.strategies.review.cli import review_command

        return review_command


STRATEGY = ReviewStrategy()
