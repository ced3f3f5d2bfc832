"""The core labeling loop, and the public seams strategies and engines call.

- `Job`: a config bound to its task, demos and backend (prompts, cache keys, model calls);
- `Runner`: labels a run's rows batch by batch through the cache (`run`, `label_batch`, `answers`);
- the run lifecycle, written once: `begin_run` -> `announce` -> batches -> `finish_run`;
- `output_frame`: the input columns plus the label columns, read from the store;
- `ask_texts` / `ask_scores`: requests that belong to no row (demos, rules, verdicts, synthetic text), cached;
- `label_rows` / `plan_rows` / `calibrate_on_seed`: the one entry the Python API and every strategy label through;
- `strategy.Strategy`: the seam a strategy registers through (evaluation and report hooks, its tables).
"""

from labelmill.core.job import Job, check_columns
from labelmill.core.lifecycle import BatchStats, Ending, OpenedRun, RunResult, Tally, announce, begin_run, finish_run, open_run
from labelmill.core.loop import Runner
from labelmill.core.output import calibrate_rows, labeled_frame, output_frame
from labelmill.core.ask import ask_scores, ask_texts  # noqa: E402  (after Runner: it uses it)
from labelmill.core.entry import CalibrateOptions, RunOptions, calibrate_on_seed, label_rows, plan_rows  # noqa: E402  (after Runner and Job)

__all__ = [
    "BatchStats", "CalibrateOptions", "Ending", "Job", "RunOptions", "ask_scores", "ask_texts", "calibrate_on_seed", "label_rows", "plan_rows", "OpenedRun", "RunResult", "Runner", "Tally", "announce", "begin_run", "calibrate_rows", "check_columns",
    "finish_run", "labeled_frame", "open_run", "output_frame",
]
