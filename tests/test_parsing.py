import pytest
from hypothesis import given, strategies as st

from labelmill.config import load_config
from labelmill.tasks import make_task
from labelmill.tasks.classification import LabelMatcher
from labelmill.types import Generation, Label, ParseFailure

from conftest import fake_config


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("positive", "positive"),
        ("Positive.", "positive"),
        ("The answer is: positive", "positive"),
        ("**Negative**", "negative"),
        ("Sentiment: negative\nBecause the plot is dull.", "negative"),
        ('"positive"', "positive"),
        ("I think this review is negative overall.", "negative"),
        ("positive, not negative", "positive"),
    ],
)
def test_matcher_accepts_what_models_say(answer, expected):
    assert LabelMatcher(["positive", "negative"]).match(answer) == expected


@pytest.mark.parametrize("answer, kind", [("", "empty"), ("I cannot tell.", "no_label"), ("It could be negative or positive", "ambiguous")])
def test_matcher_never_guesses(answer, kind):
    out = LabelMatcher(["positive", "negative"]).match(answer)
    assert isinstance(out, ParseFailure) and out.kind == kind and out.raw == answer


def test_longer_label_wins_over_its_substring():
    matcher = LabelMatcher(["toxic", "not toxic"])
    assert matcher.match("Not toxic.") == "not toxic"
    assert matcher.match("This comment is not toxic") == "not toxic"
    assert matcher.match("toxic") == "toxic"


def test_labels_with_punctuation_and_underscores():
    matcher = LabelMatcher(["Sci/Tech", "World", "card_arrival", "reverted_card_payment?"])
    assert matcher.match("sci/tech") == "Sci/Tech"
    assert matcher.match("Card arrival") == "card_arrival"
    assert matcher.match("reverted_card_payment?") == "reverted_card_payment?"


label_text = st.text(alphabet=st.characters(whitelist_categories=("L", "N"), max_codepoint=0x24F), min_size=1, max_size=12)


@given(st.lists(label_text, min_size=2, max_size=6, unique_by=lambda s: s.lower()), st.data())
def test_any_label_survives_chatty_wrapping(labels, data):
    from labelmill.tasks.base import normalise

    if len({normalise(l) for l in labels}) < len(labels) or any(not normalise(l) for l in labels):
        return
    # a label that is a whole word inside another label is legitimately ambiguous; skip those sets
    if any(a != b and f" {normalise(a)} " in f" {normalise(b)} " for a in labels for b in labels):
        return
    label = data.draw(st.sampled_from(labels))
    if normalise(label.upper()) != normalise(label):  # e.g. Turkish dotless i: upper-casing loses the letter
        return
    matcher = LabelMatcher(labels)
    for wrapped in (label, f"The answer is: {label}.", f"**{label.upper()}**", f"Label: {label}\n"):
        assert matcher.match(wrapped) == label


def test_classification_scores_give_a_distribution():
    from labelmill.types import ScoreResult

    task = make_task(load_config(fake_config()))
    out = task.from_scores(ScoreResult(logprobs=[-0.1, -2.5]))
    assert isinstance(out, Label) and out.value == "positive"
    assert abs(sum(out.distribution.values()) - 1) < 1e-9
    assert out.confidence == pytest.approx(out.distribution["positive"])
    assert 0 < out.signals["margin"] < 1 and 0 < out.signals["entropy"] < 1


def test_generation_confidence_is_mean_token_probability():
    import math

    task = make_task(load_config(fake_config()))
    out = task.parse(Generation("Negative.", token_logprobs=[math.log(0.5), math.log(1.0)]))
    assert out.value == "negative" and out.confidence == pytest.approx(0.75)


def test_multilabel_parse_and_gold():
    task = make_task(load_config(fake_config(task="multilabel", labels=["billing", "shipping", "product quality"])))
    assert task.parse(Generation("Billing, shipping")).value == ["billing", "shipping"]
    assert task.parse(Generation("product quality and billing")).value == ["billing", "product quality"]
    assert task.parse(Generation("none")).value == []
    failure = task.parse(Generation("billing, weather"))
    assert isinstance(failure, ParseFailure) and failure.kind == "unknown_label"
    assert task.parse_gold("shipping|billing") == ["billing", "shipping"]
    metrics = task.metrics([["billing"], ["shipping"], []], [["billing"], None, []])
    assert metrics["accuracy"] == pytest.approx(2 / 3) and metrics["completion_rate"] == pytest.approx(2 / 3)
