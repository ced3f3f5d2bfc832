"""Task types: each a prompt builder, a pure parser and metrics, found by name in `labelmill.registry.tasks`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelmill.registry import tasks
from labelmill.tasks.base import Demo, Task

if TYPE_CHECKING:
    from labelmill.config import Config



def make_task(config: Config) -> Task:
    """The task object for a config's task type (built-ins and plugins alike, through `labelmill.registry.tasks`)."""
    return tasks.get(config.task)(config)


__all__ = ["Demo", "Task", "make_task", "tasks"]
