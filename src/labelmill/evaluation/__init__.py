"""Evaluate a labeled output: metrics, threshold table, ECE, and the HTML report (strategies add sections)."""

from labelmill.evaluation.metrics import default_report_path, evaluate

__all__ = ["default_report_path", "evaluate"]
