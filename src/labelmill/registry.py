"""Name -> component registries. Built-ins and entry-point plugins register the same way, lazily."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, Literal, TypeVar

from labelmill.errors import UnknownComponentError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to components; a component is imported only when first asked for."""

    def __init__(self, kind: str, entry_point_group: str | None = None):
        self.kind = kind
        self.group = entry_point_group
        self._targets: dict[str, str] = {}
        self._loaded: dict[str, T] = {}
        self._scanned = False

    def register(self, name: str, component: T) -> T:
        self._loaded[name] = component
        return component

    def register_lazy(self, name: str, target: str) -> None:
        """`target` is 'package.module:attribute'."""
        self._targets[name] = target

    def _scan_entry_points(self) -> None:
        if self._scanned or not self.group:
            return
        self._scanned = True
        for ep in entry_points(group=self.group):
            self._targets.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        self._scan_entry_points()
        return sorted(set(self._targets) | set(self._loaded))

    def get(self, name: str) -> T:
        if name in self._loaded:
            return self._loaded[name]
        self._scan_entry_points()
        target = self._targets.get(name)
        if target is None:
            raise UnknownComponentError(self.kind, name, self.names())
        module_name, _, attr = target.partition(":")
        component = getattr(importlib.import_module(module_name), attr)
        self._loaded[name] = component
        return component


# The registries config validates names against live here, below config; each built-in is a lazy target,
# imported only when asked for, so naming a task type or a selector never imports its module upward.
tasks: Registry = Registry("task", entry_point_group="labelmill.tasks")
for _name, _target in {
    "classification": "classification:ClassificationTask", "multilabel": "multilabel:MultilabelTask", "ner": "ner:NerTask",
    "matching": "matching:MatchingTask", "qa": "qa:QATask", "extraction": "extraction:ExtractionTask",
    "relation": "relation:RelationTask", "relations": "relation:RelationsTask", "generation": "generation:GenerationTask",
    "roles": "roles:RolesTask", "temporal": "temporal:TemporalTask",
}.items():
    tasks.register_lazy(_name, f"labelmill.tasks.{_target}")

selectors: Registry = Registry("example selection", entry_point_group="labelmill.selectors")
for _name in ("fixed", "random", "balanced", "similar", "mmr", "similar_per_label"):
    selectors.register_lazy(_name, f"labelmill.selectors.pickers:{_name.upper()}")


@dataclass(frozen=True)
class Section:
    """A config section a task type or a strategy owns (the way spacy-llm registers a task's factory with its
    settings): its key in the config file, its pydantic model (every key with a default), and whether it
    changes what the labeler answers, i.e. enters the config's fingerprint: `always`, `unless_default` (a
    section added after configs were stored: at its defaults it is left out, so those configs keep their
    runs), or `never` (a strategy's settings that only steer other runs)."""

    name: str
    model: type
    owner: str
    fingerprint: Literal["always", "unless_default", "never"] = "unless_default"


# Config sections, each defined and registered by the module of the task or strategy that owns it (a plugin
# registers its own under the `labelmill.sections` entry point, or with `sections.register`); the config
# validates each against its owner's model, read only when a config is first validated.
sections: Registry[Section] = Registry("config section", entry_point_group="labelmill.sections")
for _name, _target in {
    "classification": "tasks.classification", "qa": "tasks.qa", "ner": "tasks.ner", "relation": "tasks.relation", "roles": "tasks.roles", "temporal": "tasks.temporal",
    "weak": "strategies.weak.section", "ensemble": "strategies.ensemble.section", "autolabel": "autolabel",
}.items():
    sections.register_lazy(_name, f"labelmill.{_target}:SECTION")
del _name, _target


def all_sections() -> dict[str, Section]:
    """Every registered section by its key (imports their owners' modules: done when a config is validated)."""
    return {name: sections.get(name) for name in sections.names()}


def lazy_exports(package: str, public: dict[str, str]) -> Callable[[str], Any]:
    """A package's `__getattr__` for its public names (`name -> module`, relative to the package), each
    imported on first use: a strategy package's `__all__` without importing its modules when the CLI
    loads the strategy's registration."""

    def attribute(name: str) -> Any:
        if name in public:
            return getattr(importlib.import_module(f"{package}.{public[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return attribute
