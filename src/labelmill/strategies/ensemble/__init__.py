"""Ensembles over prompts and models: each member its own run, combined per row."""

from labelmill.strategies.ensemble.run import combine, member_configs, run_ensemble

__all__ = ["combine", "member_configs", "run_ensemble"]
