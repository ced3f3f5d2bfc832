"""labelmill synth instructions / responses / rationales / critiques / preferences on scripted fake models
(through the backend registry): the prompts each pipeline sends, its filters, the cache, and the DPO file."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
from conftest import child_env, cli_command, fake_config

from labelmill.backends.fake import FakeBackend
from labelmill.config import ModelSpec
from labelmill.errors import InputDataError
from labelmill.strategies.synth.texts import synth_critiques, synth_instructions, synth_preferences, synth_rationales, synth_responses

SEEDS = pd.DataFrame({"instruction": ["Explain photosynthesis to a child.", "Write a haiku about autumn rain.", "List three uses of a paperclip.",
                                      "Translate 'good morning' into French.", "Summarize the plot of Hamlet in two sentences."]})


def writer(replies, log=None, **params):
    p = {"replies": replies, **params}
    if log:
        p["call_log"] = str(log)
    return {"backend": "fake", "name": "writer", "params": p}


def test_self_instruct_writes_new_tasks_and_drops_near_duplicates_of_seeds(tmp_path):
    # the fake "writes" a variation of the first task it was shown; shown a seed first twice, it writes the same task twice
    replies = [[r"1\. (.*?) ", "Describe {0} in a short poem for a school newsletter"]]
    log = tmp_path / "calls.log"
    result = synth_instructions(SEEDS, n=12, model=writer(replies, log), project=tmp_path / "p.db", output=tmp_path / "new.csv")
    f, out = result.figures, result.frame
    assert f["generated"] == 12 and 0 < f["kept"] < 12 and f["removed"].get("near-duplicate", 0) >= 1
    kept = out[out["kept"]]["instruction"].tolist()
    assert len(set(kept)) == len(kept) and all(k.startswith("Describe") for k in kept)
    assert all(len(s.split(" || ")) == 3 for s in out["seed_instructions"])  # three seeds shown in each prompt
    assert (tmp_path / "new.csv").exists()
    calls = len(log.read_text().splitlines())
    synth_instructions(SEEDS, n=12, model=writer(replies, log), project=tmp_path / "p.db")
    assert len(log.read_text().splitlines()) == calls  # a rerun asks nothing twice


def test_evol_instruct_rewrites_each_seed_and_drops_the_ones_that_repeat_it(tmp_path):
    replies = [[r"in more depth[\s\S]*Task: (.*)", "{0}"], [r"Task: (.*)", "{0} Answer in under 100 words and give one example."]]
    result = synth_instructions(SEEDS, n=5, method="evol", model=writer(replies), project=tmp_path / "p.db")
    out = result.frame
    assert out["operation"].tolist() == ["constraints", "deepen", "concretize", "reasoning", "breadth"]
    assert out.loc[1, "removed_by"] == "repeats its seed" and result.figures["kept"] == 4
    assert out.loc[0, "instruction"].endswith("give one example.")
    with pytest.raises(InputDataError, match="no column 'prompt'"):
        synth_instructions(SEEDS, column="prompt", model=writer(replies), project=tmp_path / "p.db")


def test_responses_rationales_and_critiques(tmp_path):
    rows = pd.DataFrame({"instruction": ["What is the capital of France?", "What is the capital of Italy?"], "context": ["France: capital Paris.", "Italy: capital Rome."]})
    replies = [[r"capital of (\w+)\?", "The capital of {0} is its largest city."]]
    got = synth_responses(rows, model=writer(replies), project=tmp_path / "p.db").frame
    assert got["response"].tolist() == ["The capital of France is its largest city.", "The capital of Italy is its largest city."]
    assert got["response_model"].iloc[0] == "fake:writer"
    crit = synth_critiques(got, model=writer([[r"Response: .*largest city", "The context says the capital, not the largest city: unsupported."]]),
                           project=tmp_path / "p.db").frame
    assert crit["critique"].str.contains("unsupported").all() and not crit["critique_says_ok"].any()
    labeled = pd.DataFrame({"text": ["a good fun film", "a dull boring film"], "label": ["positive", "negative"]})
    rat = synth_rationales(fake_config(), labeled, model=writer([[r'label is "(\w+)"', "The words make it {0}."]]), project=tmp_path / "p.db")
    assert rat.frame["rationale"].tolist() == ["The words make it positive.", "The words make it negative."]
    with pytest.raises(InputDataError, match="no column 'label'"):
        synth_rationales(fake_config(), labeled.drop(columns=["label"]), project=tmp_path / "p.db")


def test_preferences_are_judged_and_exported_as_dpo(tmp_path):
    import datasets
    rows = pd.DataFrame({"instruction": ["What is the capital of France?"] * 2 + ["Name the French capital."], "context": ["Paris is the capital of France."] * 3})
    a = FakeBackend(ModelSpec(backend="fake", name="a", params={"default_reply": "Paris"}))
    b = FakeBackend(ModelSpec(backend="fake", name="b", params={"default_reply": "Lyon"}))
    judge = FakeBackend(ModelSpec(backend="fake", name="judge", params={"keywords": {"yes": ["paris"], "no": ["lyon"]}}))
    result = synth_preferences(rows, model_a="a", model_b="b", project=tmp_path / "p.db", output=tmp_path / "prefs.csv", dpo=tmp_path / "dpo.jsonl",
                               backends={"a": a, "b": b, "judge": judge})
    f = result.figures
    assert f["pairs"] == 3 and f["first_wins"] == 3 and f["dpo_rows"] == 3 and f["judge_mode"] == "pointwise"
    loaded = datasets.load_dataset("json", data_files=str(tmp_path / "dpo.jsonl"), split="train")
    assert {"prompt", "chosen", "rejected"} <= set(loaded.column_names)
    assert loaded[0]["chosen"] == "Paris" and loaded[0]["rejected"] == "Lyon"
    assert "T=0.0" in json.dumps(loaded[0])  # the models (and settings) of each side


def test_cli_instructions(tmp_path):
    SEEDS.to_csv(tmp_path / "seeds.csv", index=False)
    done = subprocess.run(cli_command("synth", "instructions", "seeds.csv", "--out", "x.csv", "--column", "task"), cwd=tmp_path, env=child_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "no column 'task'" in done.stderr + done.stdout and "Traceback" not in done.stderr
    helps = subprocess.run(cli_command("synth", "--help"), cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=120).stdout
    assert all(c in helps for c in ("instructions", "responses", "rationales", "critiques", "preferences"))


def test_cli_export_chat_and_hf(tmp_path):
    import datasets

    pd.DataFrame({"instruction": ["Say hi.", "Say bye.", "Drop me."], "response": ["Hi!", "Bye!", "x"], "kept": [True, True, False]}).to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "cfg.yaml").write_text("task: classification\n")
    done = subprocess.run(cli_command("synth", "export", "rows.csv", "--format", "chat", "--out", "chat.jsonl", "--system", "Be brief."), cwd=tmp_path,
                          env=child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    chat = datasets.load_dataset("json", data_files=str(tmp_path / "chat.jsonl"), split="train")
    assert len(chat) == 2 and [m["role"] for m in chat[0]["messages"]] == ["system", "user", "assistant"] and chat[1]["messages"][2]["content"] == "Bye!"
    done = subprocess.run(cli_command("synth", "export", "rows.csv", "--format", "hf", "--out", "ds", "--config", "cfg.yaml"), cwd=tmp_path,
                          env=child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ds = datasets.load_from_disk(str(tmp_path / "ds"))
    assert ds["instruction"] == ["Say hi.", "Say bye."] and (tmp_path / "ds" / "labelmill.yaml").read_text() == "task: classification\n"
    assert "labelmill" in (tmp_path / "ds" / "README.md").read_text()
    bad = subprocess.run(cli_command("synth", "export", "rows.csv", "--format", "chat", "--out", "c.jsonl", "--response-column", "answer"), cwd=tmp_path,
                         env=child_env(), capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "no column 'answer'" in bad.stderr + bad.stdout
