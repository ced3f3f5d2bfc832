"""Task registry: task type name -> Task class (a prompt builder, a pure parser and metrics)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelmill.registry import Registry
from labelmill.tasks.base import Demo, Task

if TYPE_CHECKING:
    from labelmill.config import Config

tasks: Registry[type[Task]] = Registry("task", entry_point_group="labelmill.tasks")
tasks.register_lazy("classification", "labelmill.tasks.classification:ClassificationTask")
tasks.register_lazy("multilabel", "labelmill.tasks.multilabel:MultilabelTask")
tasks.register_lazy("ner", "labelmill.tasks.ner:NerTask")
tasks.register_lazy("matching", "labelmill.tasks.matching:MatchingTask")
tasks.register_lazy("qa", "labelmill.tasks.qa:QATask")
tasks.register_lazy("extraction", "labelmill.tasks.extraction:ExtractionTask")
tasks.register_lazy("relation", "labelmill.tasks.relation:RelationTask")
tasks.register_lazy("relations", "labelmill.tasks.relation:RelationsTask")
tasks.register_lazy("generation", "labelmill.tasks.generation:GenerationTask")


def make_task(config: Config) -> Task:
    return tasks.get(config.task)(config)


__all__ = ["Demo", "Task", "make_task", "tasks"]
