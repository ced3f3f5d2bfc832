"""Scale-out on Ray: the pending rows of a run are sharded over Ray actors, each with its own backend.

The driver owns the project store. It opens the run exactly as `labelmill run` does (same run key, so
a Ray run and a plain run resume each other), hands out shards of pending rows, and commits each
finished shard with `Store.save_batch`, whose INSERT OR IGNORE makes a retried Ray task harmless: a
row is stored once. Workers never touch the store: they label with the same `Runner.label_batch`
code through a `ShardStore` that collects what the runner would have saved. The run is opened and closed
by the core's lifecycle (`begin_run` / `finish_run`), exactly as a local run.

    labelmill run config.yaml rows.csv --out out.csv --ray              # a local Ray, 2 workers
    labelmill run config.yaml rows.csv --out out.csv --ray auto --ray-workers 8   # the cluster this node is in

See docs/ray.md for a cluster with one model server per node.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import Field

from labelmill.config import Config, dump_config
from labelmill.core import BatchStats, Ending, RunOptions, Job, Runner, RunResult, Tally, announce, begin_run, finish_run
from labelmill.errors import ConfigError, MissingDependencyError
from labelmill.events import BatchDone, EventHandler, ignore
from labelmill.store import Store
from labelmill.tasks import make_task


class ShardStore:
    """What a worker's runner sees instead of the project store: no cache hits, saves collected in memory."""

    def __init__(self) -> None:
        self.saved: list[tuple[list, list]] = []

    def cache_get(self, keys: list[str]) -> dict[str, Any]:
        return {}

    def save_batch(self, run_id: int, annotations: list, cache_entries: list) -> None:
        self.saved.append((annotations, cache_entries))

    def embeddings_get(self, keys: list[str]) -> dict[str, Any]:
        return {}

    def embeddings_put(self, model: str, vectors: dict[str, Any]) -> None:
        pass


class LabelWorker:
    """One Ray actor: a Job (task, demos, backend) built once from the config, labeling shard after shard."""

    def __init__(self, config_data: dict[str, Any], base_dir: str):
        from labelmill.config import load_config

        config = load_config(config_data)
        config.base_dir = Path(base_dir)
        self.job = Job(config)

    def label(self, indices: list[int], records: dict[int, dict[str, Any]]) -> dict[str, Any]:
        store = ShardStore()
        runner = Runner(self.job, store)  # type: ignore[arg-type]
        stats = runner.label_batch(0, indices, records)  # type: ignore[arg-type]
        annotations = [a for saved, _ in store.saved for a in saved]
        entries = [e for _, saved in store.saved for e in saved]
        return {"annotations": annotations, "entries": entries, "stats": stats}


class RayOptions(RunOptions):
    """A run's options (`RunOptions`) plus where it runs: `address` (None starts a local Ray), `workers`
    (actors), `shard_rows` (rows per shard; default: about two shards per worker)."""

    address: str | None = None
    workers: int = Field(2, ge=1)
    shard_rows: int | None = Field(None, ge=1)


def label_on_ray(config: Config, data: Any, options: RayOptions | dict | None = None, *, project: str | Path = "labelmill.db",
                 on_event: EventHandler = ignore, **knobs: Any) -> RunResult:
    """Label like `api.label`, with the rows sharded over `workers` Ray actors (`address`: None starts a local Ray)."""
    o = RayOptions.of(options, knobs)
    output, limit, max_cost, address, workers, shard_rows = o.output, o.limit, o.max_cost, o.address, o.workers, o.shard_rows
    if o.calibrator is not None:
        raise ConfigError("--calibration is not supported with --ray yet", fix="drop --ray to apply a calibration, or calibrate the output afterwards")
    if max_cost is not None:
        raise ConfigError("--max-cost is not supported with --ray yet", fix="drop --ray to run with a cost cap, or drop --max-cost")
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "ray", "--ray") from None
    task = make_task(config)
    config_data = dump_config(config)
    actors: list[Any] = []
    with Store(project) as store:
        run = begin_run(store, config, task, data, limit=limit)  # a missing column fails here, before Ray starts
        records = run.records
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        actor_cls = ray.remote(num_cpus=1 if config.model.backend == "llama_cpp" else 0, max_restarts=2, max_task_retries=2)(LabelWorker)
        actors = [actor_cls.remote(config_data, str(config.base_dir)) for _ in range(min(workers, max(1, len(run.pending))))] if run.pending else []
        announce(run, on_event, config.model.method, f"{config.model.name} on {len(actors)} Ray workers")
        size = shard_rows or max(1, min(config.model.batch_size * 8, -(-len(run.pending) // (2 * max(1, len(actors))))))
        shards = [run.pending[i : i + size] for i in range(0, len(run.pending), size)]
        tally, stopped = Tally(), _label_shards(store, run, actors, shards, records, on_event)
        for stats in stopped[1]:
            tally.add(stats)
        try:
            return finish_run(store, config, task, run, tally, emit=on_event, end=Ending(output=output, stopped=stopped[0], max_cost=max_cost))
        finally:
            for actor in actors:
                ray.kill(actor)


def _label_shards(store: Store, run: Any, actors: list[Any], shards: list[list[int]], records: list[dict[str, Any]],
                  on_event: EventHandler) -> tuple[str | None, list[BatchStats]]:
    """Hand shards to idle actors and commit each finished shard; (the stop kind, if any; each shard's stats)."""
    import ray

    in_flight: dict[Any, Any] = {}
    stopped, labeled_so_far, idle, all_stats = None, len(run.done), list(actors), []
    cost = 0.0
    while shards or in_flight:
        while shards and idle and not stopped:
            actor, shard = idle.pop(), shards.pop(0)
            in_flight[actor.label.remote(shard, {i: records[i] for i in shard})] = actor
        if not in_flight:
            break
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        for ref in ready:
            idle.append(in_flight.pop(ref))
            result = ray.get(ref)
            store.save_batch(run.run_id, result["annotations"], result["entries"])
            stats: BatchStats = result["stats"]
            all_stats.append(stats)
            cost += stats.cost
            sent = len(result["annotations"])
            labeled_so_far += sent
            on_event(BatchDone(labeled_so_far, len(run.frame), sent, stats.model, stats.failed, time.perf_counter() - run.started, cost))
            if stats.unsent:
                stopped = stats.unsent[0]
                shards.clear()
    return stopped, all_stats
