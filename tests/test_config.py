import json

import pytest
import yaml

import labelmill
from labelmill.config import load_config
from labelmill.errors import ConfigError

from conftest import SHARED, fake_config


def write(tmp_path, data, name="config.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if name.endswith(".yaml") else json.dumps(data))
    return path


def test_unknown_top_level_key_names_the_nearest(tmp_path):
    data = fake_config()
    data["guidlines"] = data.pop("guidelines")
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, data))
    assert "unknown key 'guidlines'" in err.value.message
    assert "did you mean 'guidelines'" in err.value.message


def test_unknown_nested_key_names_the_nearest(tmp_path):
    data = fake_config()
    data["model"]["batchsize"] = 3
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, data))
    assert "model.batchsize" in err.value.message and "batch_size" in err.value.message


def test_bad_value_names_key_and_value(tmp_path):
    data = fake_config(task="sumarize")
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, data))
    assert "'task'" in err.value.message and "sumarize" in err.value.message


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("task: classification\nlabels: [a, b\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "line" in err.value.message


def test_labels_accept_strings_dicts_and_mappings():
    assert load_config(fake_config(labels=["a", "b"])).label_names == ["a", "b"]
    cfg = load_config(fake_config(labels={"a": "first", "b": "second"}))
    assert [l.description for l in cfg.labels] == ["first", "second"]
    with pytest.raises(ConfigError, match="duplicate"):
        load_config(fake_config(labels=["a", "a"]))


def test_fingerprint_ignores_output_names_but_not_guidelines():
    a = load_config(fake_config())
    b = load_config(fake_config(output={"label_column": "pred"}))
    c = load_config(fake_config(guidelines="Other."))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


# fingerprints of configs as they were stored before the task and strategy sections moved to their owners
# (computed by the code of 84e4d16): every stored run keeps its fingerprint, so nothing is labeled twice
STORED_FINGERPRINTS = [
    ({"task": "classification", "labels": ["a", "b"]}, "f6fd2bfc2364a295"),
    ({"task": "classification", "labels": ["a", "b"], "weak": {"sub_labelers": [{"name": "z", "kind": "zero_shot"}]}}, "f6fd2bfc2364a295"),
    ({"task": "classification", "labels": ["a", "b"], "ensemble": {"members": [{}, {"guidelines": "x"}]}}, "70e072f88240f9fe"),
    ({"task": "classification", "labels": ["a", "b"], "reasoning": {"samples": 3}}, "edc8138a8399f72b"),
    ({"task": "roles"}, "6549dc1bce760c1f"),
    ({"task": "roles", "roles": {"rules": "first"}}, "4a3ae290332ae10c"),
    ({"task": "temporal"}, "017759fd583acf8f"),
    ({"task": "temporal", "temporal": {"annotations_column": None}}, "c3011d53aec483ce"),
    ({"task": "qa", "qa": {"verify": False}}, "56267e40a08107e0"),
    ({"task": "ner", "labels": ["PER"], "ner": {"tokens_column": None}}, "b10ab122ec409e3f"),
    ({"task": "relation", "labels": ["x", "Other"], "relation": {"directed": False}}, "9d3f13ae354199e6"),
]


@pytest.mark.parametrize(("raw", "stored"), STORED_FINGERPRINTS)
def test_a_config_keeps_the_fingerprint_its_runs_were_stored_under(raw, stored):
    assert load_config(raw).fingerprint() == stored


def test_a_registered_section_is_validated_read_and_fingerprinted_as_its_owner_says(monkeypatch):
    """A section a task or strategy registers (here from outside) is checked like a core one, reads as an
    attribute, and enters the fingerprint by its policy: always, only when set, or never."""
    from pydantic import Field

    from labelmill.config import Strict
    from labelmill.registry import Section, sections

    class Tone(Strict):
        style: str = Field("plain")

    base = {"task": "classification", "labels": ["a", "b"]}
    before = load_config(base).fingerprint()  # a config stored before the section existed
    for policy in ("always", "unless_default", "never"):
        monkeypatch.setitem(sections._loaded, "tone", Section("tone", Tone, owner="a test", fingerprint=policy))
        plain, same, loud = (load_config({**base, **extra}) for extra in ({}, {"tone": {"style": "plain"}}, {"tone": {"style": "loud"}}))
        assert plain.tone == Tone() and loud.tone.style == "loud"
        assert plain.fingerprint() == same.fingerprint()
        assert (loud.fingerprint() != plain.fingerprint()) is (policy != "never")
        assert (plain.fingerprint() == before) is (policy != "always")
        with pytest.raises(ConfigError, match="unknown key 'tone.styl'; did you mean 'style'"):
            load_config({**base, "tone": {"styl": "loud"}})
        with pytest.raises(ConfigError, match="unknown key 'tonne'; did you mean 'tone'"):
            load_config({**base, "tonne": {}})
    monkeypatch.delitem(sections._loaded, "tone")
    with pytest.raises(ConfigError, match="unknown key 'tone'"):
        load_config({**base, "tone": {}})


def test_a_task_section_is_checked_by_its_owner_model_with_the_path_in_the_message():
    with pytest.raises(ConfigError, match="'roles.rules': Input should be 'off', 'fill' or 'first'"):
        load_config({"task": "roles", "roles": {"rules": "sometimes"}})
    with pytest.raises(ConfigError, match=r"'weak.sub_labelers.0.abstain_below'.*between 0 and 1"):
        load_config({"task": "classification", "labels": ["a", "b"], "weak": {"sub_labelers": [{"name": "x", "kind": "prompt", "abstain_below": 3}]}})
    from labelmill.config import RolesSpec  # the old import path still names the owner's model
    from labelmill.tasks.roles import RolesSpec as owned

    assert RolesSpec is owned


def test_autolabel_classification_configs_are_converted():
    notices = []
    cfg = load_config(SHARED / "autolabel_configs" / "banking.json", notices=notices)
    assert cfg.task == "classification" and len(cfg.labels) == 77
    assert cfg.gold_column == "label" and cfg.examples.k == 10
    assert "{labels}" in cfg.guidelines  # filled in by the prompt builder
    assert any("Autolabel" in n for n in notices) and any("semantic_similarity" in n for n in notices)
    civil = load_config(SHARED / "autolabel_configs" / "civil_comments.json")
    assert civil.label_names == ["toxic", "not toxic"]


class _Converted(Exception):
    """Raised by the event handler at the first conversion notice: the strategy has loaded the config and sent it."""


def _stop_at_the_autolabel_notice(event):
    from labelmill.events import Notice

    if isinstance(event, Notice) and "Autolabel" in event.message:
        raise _Converted(event.message)


@pytest.mark.parametrize("entry", ["freeal", "weak", "propose", "cascade", "tiered", "tune", "synth_examples", "synth_rationales", "synth_summaries", "label"])
def test_every_strategy_passes_on_the_autolabel_conversion_notices(entry, tmp_path):
    """A strategy given an Autolabel config sends its conversion notices as events (none loads it silently)."""
    from labelmill import api
    from labelmill.strategies.cascade.run import llm_cascade, tiered_cascade
    from labelmill.strategies.freeal.run import freeal
    from labelmill.strategies.synth.examples import synth_examples
    from labelmill.strategies.synth.summaries import synth_summaries
    from labelmill.strategies.synth.texts import synth_rationales
    from labelmill.strategies.tune.run import tune
    from labelmill.strategies.weak.run import weak
    from labelmill.strategies.weak.propose import propose

    config, rows, project = SHARED / "autolabel_configs" / "banking.json", [{"text": "my card is lost", "label": "lost_or_stolen_card"}], tmp_path / "p.db"
    calls = {
        "freeal": lambda on: freeal(config, rows, project=project, on_event=on),
        "weak": lambda on: weak(config, rows, project=project, on_event=on),
        "propose": lambda on: propose(config, rows, project=project, on_event=on),
        "cascade": lambda on: llm_cascade(config, rows, project=project, on_event=on),
        "tiered": lambda on: tiered_cascade(config, rows, tiers=["student", "qwen2.5-coder-0.5b"], seed=rows, project=project, on_event=on),
        "tune": lambda on: tune(config, rows, project=project, on_event=on),
        "synth_examples": lambda on: synth_examples(config, project=project, on_event=on),
        "synth_rationales": lambda on: synth_rationales(config, rows, project=project, on_event=on),
        "synth_summaries": lambda on: synth_summaries(config, rows, project=project, on_event=on),
        "label": lambda on: api.label(config, rows, project=project, on_event=on),
    }
    with pytest.raises(_Converted, match="Autolabel"):
        calls[entry](_stop_at_the_autolabel_notice)


def test_an_options_object_and_its_keywords_are_one_call_and_a_misspelt_knob_names_the_valid_ones(tmp_path):
    """The facade and every strategy take their knobs as one validated object or as keywords."""
    from labelmill.core import RunOptions
    from labelmill.errors import ConfigError
    from labelmill.strategies.freeal import FreealOptions

    as_object = FreealOptions.of(FreealOptions(rounds=3, debias=False))
    as_keywords = FreealOptions.of(None, {"rounds": 3, "debias": False})
    layered = FreealOptions.of(FreealOptions(rounds=1, debias=False), {"rounds": 3})  # a keyword wins over the object
    assert as_object == as_keywords == layered and as_object.rounds == 3 and as_object.relabel == "noisy"
    with pytest.raises(ConfigError, match="round") as typo:
        FreealOptions.of(None, {"round": 3})
    assert "rounds" in typo.value.fix and "generate_demos" in typo.value.fix
    with pytest.raises(ConfigError, match="relabel"):
        FreealOptions.of(None, {"relabel": "some"})
    rows = [{"text": f"a good day {i}"} for i in range(3)]
    with pytest.raises(ConfigError, match="outptu"):
        labelmill.label(fake_config(), rows, outptu=tmp_path / "x.csv", project=tmp_path / "p.db")
    assert not (tmp_path / "p.db").exists()  # rejected before anything ran
    out = labelmill.label(fake_config(), rows, RunOptions(output=tmp_path / "o.csv", limit=2), project=tmp_path / "p.db")
    assert out.output_path == tmp_path / "o.csv" and len(out.frame) == 2
