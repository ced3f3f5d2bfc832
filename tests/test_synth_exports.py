"""Exports of synthesized data, read back by the libraries that train on them."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from labelmill.errors import InputDataError
from labelmill.strategies.synth.exports import DPO_COLUMNS, chat_rows, dpo_rows, write_hf_dataset, write_jsonl
from labelmill.strategies.synth.judge import judge_pairs

from test_synth_judge import PAIRS, ReadingJudge, backend


def test_a_dpo_export_loads_with_datasets_and_has_the_expected_columns(tmp_path):
    import datasets  # the hf extra, installed with the tests
    judged = judge_pairs(PAIRS, project=tmp_path / "p.db", backend=backend(ReadingJudge)).frame
    judged.loc[3, "judge_verdict"] = "tie"  # a tie is no preference
    rows = dpo_rows(judged, first_model="qwen2.5-coder-1.5b", second_model="qwen2.5-coder-0.5b")
    path = write_jsonl(rows, tmp_path / "dpo.jsonl")
    loaded = datasets.load_dataset("json", data_files=str(path), split="train")
    assert tuple(loaded.column_names) == DPO_COLUMNS and loaded.num_rows == 3
    assert loaded[0]["chosen"] == "Paris" and loaded[0]["rejected"] == "Lyon" and loaded[0]["chosen_model"] == "qwen2.5-coder-1.5b"
    assert loaded[1]["chosen"] == "Paris" and loaded[1]["chosen_model"] == "qwen2.5-coder-0.5b"  # the second answer won
    assert loaded[0]["chosen_rating"] == pytest.approx(0.9) and loaded[0]["rejected_rating"] == pytest.approx(0.1)
    with pytest.raises(InputDataError, match="no column .judge_verdict."):
        dpo_rows(PAIRS)


def test_chat_jsonl_and_the_hugging_face_folder(tmp_path):
    import datasets  # the hf extra, installed with the tests
    frame = pd.DataFrame({"instruction": ["Say hi", "Add 2 and 2", ""], "response": ["Hi!", "4", "orphan"]})
    rows = chat_rows(frame, prompt="instruction", response="response", system="Be brief.")
    assert len(rows) == 2 and [m["role"] for m in rows[0]["messages"]] == ["system", "user", "assistant"]
    path = write_jsonl(rows, tmp_path / "sft.jsonl")
    assert json.loads(path.read_text().splitlines()[1])["messages"][2]["content"] == "4"
    folder = write_hf_dataset(frame.head(2), tmp_path / "hf", config_text="task: classification\n", figures={"kept": 2})
    assert datasets.load_from_disk(str(folder))["instruction"] == ["Say hi", "Add 2 and 2"]
    card = (folder / "README.md").read_text()
    assert "Rows: 2" in card and "- kept: 2" in card and (folder / "labelmill.yaml").read_text().startswith("task:")
