from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the checkout (mutmut runs the tests from a copy one folder deeper, in mutants/)
SHARED = next((p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()), ROOT.parent / "shared" / "data")
# The encoders run in float32 in tests on every machine (the default picks bfloat16 where the CPU has it), so
# that the thresholds the tests check do not move with the CPU; test_selectors exercises the bfloat16 path.
os.environ.setdefault("LABELMILL_ENCODER_DTYPE", "float32")

try:  # property tests check what is generated, not how fast: a slow machine (or mutmut's trampolines) must not fail them
    from hypothesis import HealthCheck, settings

    settings.register_profile("labelmill", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("labelmill")
except ImportError:
    pass


class HashEncoder:
    """A stand-in sentence encoder: signed hashed bag of words, 256 dimensions, unit length. Used only when
    LABELMILL_TEST_ENCODER=hash (a mutation run of tests that embed: each mutant's worker would otherwise load the
    real encoder); the tests' claims are stated for the real one, which every other run uses."""

    class _Vectors:
        def __init__(self, values):
            self.values = values

        def float(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self.values

    def encode(self, texts, **_):
        import hashlib
        import re

        import numpy as np

        out = np.zeros((len(texts), 256), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", str(text).lower()):
                h = int(hashlib.md5(word.encode()).hexdigest(), 16)
                out[i, h % 256] += 1.0 if (h >> 8) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return self._Vectors(out / np.where(norms == 0, 1.0, norms))


@pytest.fixture(autouse=True)
def _hash_encoder(monkeypatch):
    if os.environ.get("LABELMILL_TEST_ENCODER") == "hash":
        from labelmill.selectors import embeddings

        monkeypatch.setattr(embeddings, "load_encoder", lambda model: HashEncoder())
        monkeypatch.setenv(embeddings.ENGINE_ENV, "sentence-transformers")  # the numpy MiniLM would bypass the fake load_encoder


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Catalog weights stay in the real user cache (assembling them is slow); memo files do not leak."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def hand_annotation(i: int, label=None, **fields):
    """An annotation written out by hand for row `i` (for store and output tests that skip the model): a
    fake scorer's, every provenance field filled; `fields` replace any of them."""
    from labelmill.store.tables import Annotation

    values = dict(row_index=i, row_hash=f"h{i}", label=label, error=None, error_detail=None, confidence=None, distribution=None,
                  signals=None, raw_answer=str(label), method="score", backend="fake", model_id="m", model_sha256=None,
                  prompt_hash="p", guidelines_hash="g", cache_key=f"k{i}", cached=False)
    return Annotation(**{**values, **fields})


def fake_config(**overrides) -> dict:
    config = {
        "task": "classification",
        "name": "fake-sentiment",
        "labels": ["positive", "negative"],
        "guidelines": "Classify the sentiment.",
        "input_template": "{text}",
        "gold_column": "label",
        "model": {
            "backend": "fake",
            "name": "keywords",
            "batch_size": 4,
            "params": {"keywords": {"positive": ["good", "great", "fun"], "negative": ["bad", "dull", "boring"]}},
        },
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


ROWS = [
    {"text": "a good and fun film", "label": "positive"},
    {"text": "bad acting and a dull plot", "label": "negative"},
    {"text": "great cast", "label": "positive"},
    {"text": "boring", "label": "negative"},
    {"text": "good but boring and bad", "label": "negative"},
    {"text": "fun fun fun", "label": "positive"},
    {"text": "nothing to say", "label": "positive"},
]


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "labelmill", *args]


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    if env.get("MUTANT_UNDER_TEST") == "stats":  # mutmut's first pass records calls in its own process only
        env.pop("MUTANT_UNDER_TEST")
    return env


def label_studio_errors(tasks_path: Path) -> list[str]:
    """What Label Studio's own validator (label-studio-sdk's LabelInterface) finds wrong in an export:
    the labeling config written beside it must parse, every task must carry the data its tags show,
    and every prediction and annotation must fit the config's tags (names, types, label values)."""
    import json

    from label_studio_sdk.label_interface import LabelInterface

    tasks_path = Path(tasks_path)
    interface = LabelInterface(tasks_path.with_name(tasks_path.stem + ".label_config.xml").read_text())
    errors: list[str] = []
    for task in json.loads(tasks_path.read_text()):
        for obj in interface.objects:
            if obj.value_is_variable and task["data"].get(obj.value_name) is None:
                errors.append(f"task {task['id']}: no data.{obj.value_name}")
        for kind in ("predictions", "annotations"):
            for item in task.get(kind, []):
                errors += [f"task {task['id']} {kind}: {e}" for e in interface.validate_prediction(item, return_errors=True)]
    return errors
