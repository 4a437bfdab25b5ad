"""Evaluation numbers on a hand-checked confusion matrix; compare(); held-out data."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from finetune_kit import Classification, ClassificationError, Dataset, Evaluation, compare
from finetune_kit.classification._classify import TokenUsage
from finetune_kit.evaluate import evaluation_items

if TYPE_CHECKING:
    from pathlib import Path

GOLDS = ["cat", "cat", "cat", "cat", "dog", "dog", "dog", "bird", "bird", "bird"]


def _said(label: str | None, tokens: int = 10) -> Classification:
    return Classification(
        label=label,
        technique="logit_bias",
        model="m",
        usage=TokenUsage(prompt_tokens=tokens, completion_tokens=1, requests=1),
    )


PREDICTIONS: list[Classification | ClassificationError] = [
    _said("cat"),
    _said("cat"),
    _said("dog"),
    _said(None),  # abstained
    _said("dog"),
    _said("dog"),
    _said("cat"),
    _said("bird"),
    _said("dog"),
    ClassificationError("failed", raw_output=None, labels=("cat", "dog", "bird")),
]


@pytest.fixture
def evaluation() -> Evaluation:
    return Evaluation.from_predictions(GOLDS, PREDICTIONS, model="ft:gpt-4o-mini:acme::1")


def test_confusion_matrix(evaluation: Evaluation) -> None:
    assert evaluation.labels == ("cat", "dog", "bird")
    # Rows: true cat, dog, bird; columns: predicted cat, dog, bird, no answer.
    assert evaluation.confusion == (
        (2, 1, 0, 1),
        (1, 2, 0, 0),
        (0, 1, 1, 1),
    )


def test_accuracy_counts_missing_answers_as_wrong(evaluation: Evaluation) -> None:
    assert evaluation.n == 10
    assert evaluation.accuracy == pytest.approx(0.5)
    assert evaluation.abstained == 1
    assert evaluation.failed == 1
    assert evaluation.abstained_rate == pytest.approx(0.1)
    assert evaluation.failed_rate == pytest.approx(0.1)


def test_per_label_metrics(evaluation: Evaluation) -> None:
    cat, dog, bird = evaluation.per_label
    # cat: 2 of 3 "cat" predictions right, 2 of 4 cats found.
    assert (cat.precision, cat.recall, cat.support) == pytest.approx((2 / 3, 0.5, 4))
    assert cat.f1 == pytest.approx(4 / 7)
    # dog: 2 of 4 "dog" predictions right, 2 of 3 dogs found.
    assert (dog.precision, dog.recall, dog.support) == pytest.approx((0.5, 2 / 3, 3))
    assert dog.f1 == pytest.approx(4 / 7)
    # bird: its one prediction right, 1 of 3 birds found.
    assert (bird.precision, bird.recall, bird.support) == pytest.approx((1.0, 1 / 3, 3))
    assert bird.f1 == pytest.approx(0.5)
    assert evaluation.macro_f1 == pytest.approx(23 / 42)
    assert evaluation.metrics("dog") == dog
    with pytest.raises(KeyError):
        evaluation.metrics("fish")


def test_the_technique_used_is_reported(evaluation: Evaluation) -> None:
    assert evaluation.techniques == {"logit_bias": 9}
    assert evaluation.technique == "logit_bias"
    mixed = Evaluation.from_predictions(
        ["cat", "dog"],
        [
            Classification(label="cat", technique="prompt", model="m"),
            Classification(label="dog", technique="structured", model="m"),
        ],
    )
    assert mixed.technique == "mixed"
    assert mixed.techniques == {"prompt": 1, "structured": 1}
    assert Evaluation.from_predictions(["cat", "dog"], ["cat", None]).technique is None


def test_tokens_are_summed(evaluation: Evaluation) -> None:
    assert evaluation.usage.prompt_tokens == 90
    assert evaluation.usage.completion_tokens == 9
    assert evaluation.usage.requests == 9


def test_table(evaluation: Evaluation) -> None:
    text = str(evaluation)

    lines = text.splitlines()
    assert lines[0] == "Evaluation of ft:gpt-4o-mini:acme::1 on 10 examples"
    assert lines[1] == (
        "accuracy 0.500   macro-F1 0.548   abstained 10.0%   failed 10.0%   tokens 99   "
        "technique logit_bias"
    )
    assert lines[3].split() == ["label", "precision", "recall", "f1", "support"]
    assert lines[4].split() == ["cat", "0.667", "0.500", "0.571", "4"]
    assert lines[8].split() == ["true", "\\", "predicted", "cat", "dog", "bird", "(none)"]
    assert lines[9].split() == ["cat", "2", "1", "0", "1"]


def test_labels_order_and_unused_labels() -> None:
    result = Evaluation.from_predictions(["a", "b"], ["a", "b"], labels=["b", "a", "c"], model=None)

    assert result.labels == ("b", "a", "c")
    assert result.accuracy == 1.0
    # "c" never occurs: it does not drag macro-F1 down.
    assert result.macro_f1 == 1.0
    assert result.metrics("c").support == 0


def test_plain_label_predictions_and_errors() -> None:
    result = Evaluation.from_predictions(["a", "b", "b"], ["a", "a", None])

    assert result.confusion == ((1, 0, 0), (1, 0, 1))
    assert result.abstained == 1
    with pytest.raises(ValueError, match="predictions"):
        Evaluation.from_predictions(["a"], [])
    with pytest.raises(ValueError, match="nothing"):
        Evaluation.from_predictions([], [])
    with pytest.raises(ValueError, match="not among"):
        Evaluation.from_predictions(["z"], ["a"], labels=["a", "b"])


def test_compare_side_by_side(evaluation: Evaluation) -> None:
    base = Evaluation.from_predictions(GOLDS, ["cat"] * 10, model="gpt-4o-mini")

    table = compare(base, evaluation)

    lines = table.splitlines()
    assert lines[0].split() == ["gpt-4o-mini", "ft:gpt-4o-mini:acme::1"]
    assert lines[1].split() == ["examples", "10", "10"]
    assert lines[2].split() == ["accuracy", "0.400", "0.500"]
    assert lines[3].split() == ["macro-F1", f"{(4 / 7) / 3:.3f}", "0.548"]
    assert lines[7].split() == ["F1", "cat", "0.571", "0.571"]
    assert "note" not in table


def test_compare_notes_different_sets(evaluation: Evaluation) -> None:
    small = Evaluation.from_predictions(["cat"], ["cat"])

    assert "different numbers of examples" in compare(evaluation, small)
    with pytest.raises(ValueError, match="at least one"):
        compare()


def test_evaluation_is_serialisable(evaluation: Evaluation) -> None:
    again = Evaluation.model_validate_json(evaluation.model_dump_json())

    assert again == evaluation


def test_evaluation_items_from_chat_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "held_out.jsonl"
    rows = [
        {
            "messages": [
                {"role": "system", "content": "Label the animal."},
                {"role": "user", "content": "it barks"},
                {"role": "assistant", "content": "dog"},
            ]
        },
        {"text": "it meows", "label": "cat"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    items = evaluation_items(path)

    assert items == [
        (
            [
                {"role": "system", "content": "Label the animal."},
                {"role": "user", "content": "it barks"},
            ],
            "dog",
        ),
        ([{"role": "user", "content": "it meows"}], "cat"),
    ]


def test_evaluation_items_from_a_dataset() -> None:
    data = Dataset.from_labels(["it barks", "it meows"], ["dog", "cat"])

    assert [gold for _, gold in evaluation_items(data)] == ["dog", "cat"]


def test_evaluation_items_need_a_label() -> None:
    with pytest.raises(ValueError, match="example 2"):
        evaluation_items([{"text": "a", "label": "x"}, {"messages": [{"role": "user"}]}])


def test_from_predictions_keeps_inputs_confidences_and_probabilities() -> None:
    sure = Classification(
        label="cat",
        probabilities={"cat": 0.9, "dog": 0.1},
        confidence=0.9,
        technique="logit_bias",
        model="m",
    )
    unsure = Classification(label="dog", technique="structured", model="m")
    conversation: list[dict[str, Any]] = [
        {"role": "system", "content": "Which animal?"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "it"}, {"type": "text", "text": "barks"}],
        },
    ]

    evaluation = Evaluation.from_predictions(
        ["cat", "dog", "dog"],
        [sure, unsure, ClassificationError("no label", raw_output="?", labels=["cat", "dog"])],
        inputs=["meow", conversation, "woof"],
    )

    assert evaluation.inputs == ("meow", "it barks", "woof")
    assert evaluation.confidences == (0.9, None, None)
    assert evaluation.probabilities == ({"cat": 0.9, "dog": 0.1}, None, None)
    with pytest.raises(ValueError, match="2 true labels but 1 inputs"):
        Evaluation.from_predictions(["cat", "dog"], ["cat", "dog"], inputs=["meow"])
