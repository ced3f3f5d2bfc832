"""Scale-out on Ray: the pending rows of a run are sharded over Ray actors, each with its own backend.

The driver owns the project store. It opens the run exactly as `labelmill run` does (same run key, so
a Ray run and a plain run resume each other), hands out shards of pending rows, and commits each
finished shard with `Store.save_batch`, whose INSERT OR IGNORE makes a retried Ray task harmless: a
row is stored once. Workers never touch the store: they label with the same `Runner._label_batch`
code through a `ShardStore` that collects what the runner would have saved.

    labelmill run config.yaml rows.csv --out out.csv --ray              # a local Ray, 2 workers
    labelmill run config.yaml rows.csv --out out.csv --ray auto --ray-workers 8   # the cluster this node is in

See docs/ray.md for a cluster with one model server per node.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from labelmill.config import Config, dump_config
from labelmill.errors import ConfigError, MissingDependencyError, RunStopped
from labelmill.events import BatchDone, EventHandler, RunFinished, RunStarted, ignore
from labelmill.io import read_rows, write_rows
from labelmill.core.loop import (
    _STOP_FIXES,
    _STOP_MESSAGES,
    Job,
    Runner,
    RunResult,
    check_columns,
    open_run,
    output_frame,
)
from labelmill.store.db import Store
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
        stats = runner._label_batch(0, indices, records)  # type: ignore[arg-type]  (indexed like the full row list)
        annotations = [a for saved, _ in store.saved for a in saved]
        entries = [e for _, saved in store.saved for e in saved]
        return {"annotations": annotations, "entries": entries, "stats": stats}


def label_on_ray(
    config: Config,
    data: Any,
    *,
    output: str | Path | None = None,
    limit: int | None = None,
    project: str | Path = "labelmill.db",
    address: str | None = None,
    workers: int = 2,
    shard_rows: int | None = None,
    on_event: EventHandler = ignore,
    max_cost: float | None = None,
) -> RunResult:
    """Label like `api.label`, with the rows sharded over `workers` Ray actors (`address`: None starts a local Ray)."""
    if max_cost is not None:
        raise ConfigError("--max-cost is not supported with --ray yet", fix="drop --ray to run with a cost cap, or drop --max-cost")
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "ray", "--ray") from None
    started = time.perf_counter()
    full = read_rows(data, config.dataset)
    task = make_task(config)
    check_columns(config, task, full)
    frame = full.head(limit) if limit is not None else full
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    config_data = dump_config(config)
    records = frame.to_dict("records")
    with Store(project) as store:
        run_id, done, pending = open_run(store, config, full, len(frame), data)
        actor_cls = ray.remote(num_cpus=1 if config.model.backend == "llama_cpp" else 0, max_restarts=2, max_task_retries=2)(LabelWorker)
        actors = [actor_cls.remote(config_data, str(config.base_dir)) for _ in range(min(workers, max(1, len(pending))))] if pending else []
        on_event(RunStarted(run_id, len(frame), len(pending), bool(done), config.model.method, f"{config.model.name} on {len(actors)} Ray workers"))
        size = shard_rows or max(1, min(config.model.batch_size * 8, -(-len(pending) // (2 * max(1, len(actors))))))
        shards = [pending[i : i + size] for i in range(0, len(pending), size)]
        counts: dict[str, Any] = {"model": 0, "cached": 0, "failed": 0, "cost": 0.0}
        in_flight: dict[Any, Any] = {}
        stopped, labeled_so_far = None, len(done)
        idle = list(actors)
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
                store.save_batch(run_id, result["annotations"], result["entries"])
                stats = result["stats"]
                for key in counts:
                    counts[key] += stats[key]
                sent = len(result["annotations"])
                labeled_so_far += sent
                on_event(BatchDone(labeled_so_far, len(frame), sent, stats["model"], stats["failed"], time.perf_counter() - started, counts["cost"]))
                if stats["unsent"]:
                    stopped = stats["unsent"][0]
                    shards = []
        store.set_run_status(run_id, stopped or "done")
        result_frame, columns, failed = output_frame(store, run_id, frame, config, task)
    for actor in actors:
        ray.kill(actor)
    out_path = write_rows(result_frame, output) if output else None
    wall = time.perf_counter() - started
    labeled = int(result_frame[columns["label"]].notna().sum())
    on_event(RunFinished(run_id, len(frame), labeled, failed, counts["model"], counts["cached"], wall, counts["cost"], stopped))
    result = RunResult(run_id, result_frame, out_path, len(frame), labeled, failed, counts["model"], counts["cached"], wall, columns, counts["cost"], stopped)
    if stopped:
        raise RunStopped(
            stopped, _STOP_MESSAGES[stopped].format(cost=counts["cost"], cap=max_cost, labeled=labeled, total=len(frame), out=out_path),
            fix=_STOP_FIXES[stopped], result=result,
        )
    return result
