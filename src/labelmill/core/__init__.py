"""The core labeling loop: a Job (config + task + demos + backend), the Runner that labels batches through
the cache, the run lifecycle every strategy and engine uses, and the output frame."""

from labelmill.core.loop import Job, Runner, RunResult

__all__ = ["Job", "RunResult", "Runner"]
