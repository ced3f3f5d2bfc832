"""Exports of synthesized data in the formats training code reads: DPO preference pairs (`prompt / chosen /
rejected`, with the models and ratings of each), chat JSONL for supervised fine-tuning, and a Hugging Face
dataset folder with a dataset card and the config that made it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelmill.errors import InputDataError

DPO_COLUMNS = ("prompt", "chosen", "rejected", "chosen_model", "rejected_model", "chosen_rating", "rejected_rating")


def dpo_rows(judged: pd.DataFrame, *, prompt: str = "question", first: str = "first", second: str = "second",
             first_model: str | Sequence[str] = "", second_model: str | Sequence[str] = "") -> list[dict[str, Any]]:
    """Preference pairs from judged rows (`labelmill judge pairs` output): the winner is chosen, the other
    rejected, each with its model and the judge's P(better); ties (the two orders disagreed) are left out."""
    for column in (prompt, first, second, "judge_verdict", "judge_p_first"):
        if column not in judged.columns:
            raise InputDataError(f"DPO export: no column {column!r} in the judged rows", fix="judge the pairs first (labelmill judge pairs)")
    models_1 = [first_model] * len(judged) if isinstance(first_model, str) else list(first_model)
    models_2 = [second_model] * len(judged) if isinstance(second_model, str) else list(second_model)
    out = []
    for row, m1, m2 in zip(judged.to_dict("records"), models_1, models_2):
        verdict, p = row["judge_verdict"], float(row["judge_p_first"])
        if verdict not in ("first", "second"):
            continue
        win, lose = (first, second) if verdict == "first" else (second, first)
        out.append({"prompt": str(row[prompt]), "chosen": str(row[win]), "rejected": str(row[lose]),
                    "chosen_model": m1 if verdict == "first" else m2, "rejected_model": m2 if verdict == "first" else m1,
                    "chosen_rating": round(p if verdict == "first" else 1 - p, 4), "rejected_rating": round(1 - p if verdict == "first" else p, 4)})
    return out


def chat_rows(frame: pd.DataFrame, *, prompt: str, response: str, system: str | None = None) -> list[dict[str, Any]]:
    """SFT rows: {"messages": [system?, user, assistant]} per row with both a prompt and a response."""
    out = []
    for row in frame.to_dict("records"):
        user, assistant = row.get(prompt), row.get(response)
        if _blank(user) or _blank(assistant):
            continue
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": str(user)}, {"role": "assistant", "content": str(assistant)}]
        out.append({"messages": messages})
    return out


def write_jsonl(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=_plain) + "\n")
    return path


def write_hf_dataset(frame: pd.DataFrame, folder: str | Path, *, config_text: str = "", description: str = "", figures: dict[str, Any] | None = None) -> Path:
    """A Hugging Face dataset saved to `folder` (datasets.load_from_disk reads it), with README.md (a dataset
    card: what made it, its columns and figures) and labelmill.yaml (the config that made it)."""
    try:
        import datasets
    except ImportError:
        raise InputDataError("the Hugging Face export needs the datasets package", fix="pip install 'labelmill[hf]'") from None
    folder = Path(folder)
    datasets.Dataset.from_pandas(frame.reset_index(drop=True), preserve_index=False).save_to_disk(str(folder))
    card = ["---", "tags:", "- labelmill", "- synthetic", "---", "", f"# {folder.name}", "", description or "Synthesized with labelmill.", "",
            f"Rows: {len(frame)}. Columns: {', '.join(map(str, frame.columns))}.", ""]
    if figures:
        card += ["## Figures", "", *(f"- {k}: {json.dumps(v, default=_plain)}" for k, v in figures.items()), ""]
    if config_text:
        card += ["## Config", "", "The config that made this dataset is `labelmill.yaml` in this folder.", ""]
        (folder / "labelmill.yaml").write_text(config_text, encoding="utf-8")
    (folder / "README.md").write_text("\n".join(card), encoding="utf-8")
    return folder


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip()


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
