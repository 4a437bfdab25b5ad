"""DataFrames and Hugging Face datasets in and out of Dataset, Evaluation and metrics."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

from finetune_kit import (
    AsyncTunedModel,
    ClassificationTask,
    Dataset,
    DatasetError,
    Evaluation,
    MetricsRow,
    TunedModel,
    compare,
)
from finetune_kit.evaluate import evaluation_items
from finetune_kit.jobs._job import summarize_metrics
from tests.fake_openai import checkpoint

if TYPE_CHECKING:
    from finetune_kit.local import LocalServer

pandas = pytest.importorskip("pandas", reason="the pandas extra is not installed")

TEXTS = ["the kettle broke", "works great", "arrived on Tuesday"]
LABELS = ["negative", "positive", "neutral"]
CHAT: list[dict[str, Any]] = [
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!", "weight": 1},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
        ]
    },
]


def test_labelled_texts_from_a_dataframe() -> None:
    frame = pandas.DataFrame({"review": TEXTS, "sentiment": LABELS, "id": [7, 8, 9]})

    data = Dataset.from_pandas(frame, text="review", label="sentiment", system="Classify.")

    assert list(data) == list(Dataset.from_labels(TEXTS, LABELS, system="Classify."))


def test_chat_rows_round_trip_through_pandas() -> None:
    frame = Dataset.from_records(CHAT).to_pandas()

    assert list(frame.columns) == ["messages"]
    again = Dataset.from_pandas(frame, messages="messages")
    assert list(again) == CHAT
    assert again.to_pandas().equals(frame)


def test_labelled_dataset_round_trips_through_its_messages() -> None:
    data = Dataset.from_pandas(
        pandas.DataFrame({"text": TEXTS, "label": LABELS}), text="text", label="label"
    )

    again = Dataset.from_pandas(data.to_pandas(), messages="messages")

    assert list(again) == list(data)


def test_missing_column_is_named() -> None:
    frame = pandas.DataFrame({"text": TEXTS})

    with pytest.raises(DatasetError, match=r"column 'label' is not in the DataFrame.*'text'"):
        Dataset.from_pandas(frame, text="text", label="label")


@pytest.mark.parametrize(
    ("value", "problem"),
    [(None, "the value is missing"), (float("nan"), "the value is missing"), (3, "got 3")],
)
def test_bad_cell_names_column_and_row(value: object, problem: str) -> None:
    frame = pandas.DataFrame(
        {"text": ["a", "b", "c"], "label": ["x", value, "y"]}, index=["r1", "r2", "r3"]
    )

    with pytest.raises(DatasetError, match=rf"column 'label', row 'r2': .*{problem}"):
        Dataset.from_pandas(frame, text="text", label="label")


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ("not a list", "expected a non-empty list of messages"),
        ([], "expected a non-empty list of messages"),
        ([{"content": "no role"}], "message 0 needs a 'role' string"),
    ],
)
def test_bad_messages_name_column_and_row(messages: object, problem: str) -> None:
    frame = pandas.DataFrame({"chat": [CHAT[0]["messages"], messages]})

    with pytest.raises(DatasetError, match=rf"column 'chat', row 1: {problem}"):
        Dataset.from_pandas(frame, messages="chat")


def test_columns_must_be_one_shape_or_the_other() -> None:
    frame = pandas.DataFrame({"text": TEXTS, "label": LABELS, "messages": [[]] * 3})

    with pytest.raises(TypeError, match="text= and label="):
        Dataset.from_pandas(frame, text="text")
    with pytest.raises(TypeError, match="not both"):
        Dataset.from_pandas(frame, text="text", label="label", messages="messages")
    with pytest.raises(TypeError, match="messages="):
        Dataset.from_pandas(frame)


@pytest.mark.parametrize("entry", ["from_pandas", "from_hf"])
def test_an_unknown_keyword_names_the_entry_point(entry: str) -> None:
    frame = pandas.DataFrame({"text": TEXTS, "label": LABELS})

    with pytest.raises(TypeError, match=rf"^Dataset\.{entry}\(\) got .* keyword argument 'txt'"):
        getattr(Dataset, entry)(frame, txt="text", label="label")


def test_evaluation_has_one_row_per_example() -> None:
    golds = ["cat", "dog", "dog"]
    evaluation = Evaluation.from_predictions(golds, ["cat", "cat", None])

    frame = evaluation.to_pandas()

    assert len(frame) == evaluation.n
    assert list(frame.columns) == [
        "input",
        "gold",
        "predicted",
        "correct",
        "confidence",
        "probabilities",
    ]
    assert frame["gold"].tolist() == golds
    assert frame["correct"].tolist() == [True, False, False]
    assert frame["input"].isna().all()


HELD_OUT = Dataset.from_labels(
    ["it barks", "it purrs", "a loud bark", "meow meow"],
    ["dog", "cat", "dog", "cat"],
    system="Which animal?",
)


def test_real_evaluation_rows_carry_input_confidence_and_probabilities(
    local_server: LocalServer,
) -> None:
    model = TunedModel("gpt-4o-mini", client=local_server.client())

    evaluation = model.evaluate(HELD_OUT, progress=False)
    frame = evaluation.to_pandas()

    # What one classify call per example says, asked exactly as the evaluation asked.
    conversations = [conversation for conversation, _ in evaluation_items(HELD_OUT)]
    asked = [model.classify(c, labels=["dog", "cat"]) for c in conversations]
    assert frame["input"].tolist() == ["it barks", "it purrs", "a loud bark", "meow meow"]
    assert frame["predicted"].tolist() == [a.label for a in asked]
    assert frame["confidence"].tolist() == [a.confidence for a in asked]
    assert frame["probabilities"].tolist() == [a.probabilities for a in asked]
    assert all(c is not None for c in frame["confidence"])
    assert frame["correct"].tolist() == [
        g == p for g, p in zip(frame["gold"], frame["predicted"], strict=True)
    ]


async def test_async_evaluations_keep_the_same_columns(local_server: LocalServer) -> None:
    sync = TunedModel("gpt-4o-mini", client=local_server.client()).evaluate(
        HELD_OUT, progress=False
    )
    client = local_server.async_client()
    try:
        tuned = await AsyncTunedModel("gpt-4o-mini", client=client).evaluate(
            HELD_OUT, progress=False
        )
        task = await ClassificationTask(["dog", "cat"]).aevaluate(
            HELD_OUT, model="gpt-4o-mini", client=client, progress=False
        )
    finally:
        await client.close()

    for evaluation in (tuned, task):
        assert (
            evaluation.inputs == sync.inputs == ("it barks", "it purrs", "a loud bark", "meow meow")
        )
        assert evaluation.confidences == sync.confidences
        assert evaluation.probabilities == sync.probabilities


def test_task_evaluation_keeps_the_texts_it_classified(local_server: LocalServer) -> None:
    task = ClassificationTask(["cat", "dog"], instructions="Which animal?")
    records = [{"text": "it barks", "label": "dog"}, {"text": "meow", "label": "cat"}]

    evaluation = task.evaluate(
        records, model="gpt-4o-mini", client=local_server.client(), progress=False
    )
    frame = evaluation.to_pandas()

    assert frame["input"].tolist() == ["it barks", "meow"]
    probabilities = frame["probabilities"].tolist()
    assert [set(p) for p in probabilities] == [{"cat", "dog"}] * 2
    assert frame["confidence"].tolist() == [
        p[label] for p, label in zip(probabilities, frame["predicted"], strict=True)
    ]


def test_metrics_summary_has_one_row_per_step() -> None:
    rows = [MetricsRow(step=s, train_loss=1.0 / s, valid_loss=1.2 / s) for s in range(1, 7)]
    summary = summarize_metrics(rows, [checkpoint(4, "ft:m::x", full_valid_loss=0.31)], n_epochs=3)

    frame = summary.to_pandas()

    assert frame["step"].tolist() == [1, 2, 3, 4, 5, 6]
    assert frame["train_loss"].tolist() == [r.train_loss for r in rows]
    assert frame["valid_loss"].tolist() == [r.valid_loss for r in rows]
    # The checkpoint's full validation loss fills its step; its model is named there.
    assert frame.loc[3, "full_valid_loss"] == 0.31
    assert frame["checkpoint"].isna().tolist() == [True, True, True, False, True, True]
    assert frame.loc[3, "checkpoint"] == "ft:m::x:ckpt-step-4"
    assert list(frame.columns) == [*MetricsRow.model_fields, "checkpoint"]


def test_comparison_frame_is_metrics_by_model() -> None:
    base = Evaluation.from_predictions(["a", "b"], ["a", "a"], model="base")
    tuned = Evaluation.from_predictions(["a", "b"], ["a", "b"], model="tuned")

    frame = compare(base, tuned).to_pandas()

    assert list(frame.columns) == ["base", "tuned"]
    assert frame.loc["accuracy"].tolist() == [0.5, 1.0]
    assert frame.loc["examples"].tolist() == [2.0, 2.0]
    assert frame.loc["F1 b"].tolist() == [0.0, 1.0]


def test_without_pandas_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)

    with pytest.raises(ImportError, match=r'pip install "finetune-kit\[pandas\]"'):
        Dataset.from_records(CHAT).to_pandas()


# --- Hugging Face datasets ---------------------------------------------------------------------


def _hf() -> Any:
    return pytest.importorskip("datasets", reason="the hf extra is not installed")


def test_chat_rows_round_trip_through_hugging_face() -> None:
    _hf()
    data = Dataset.from_records(CHAT)

    table = data.to_hf()

    assert table.column_names == ["messages"]
    # TRL's conversational format: a list of role/content dicts per row.
    assert table[1]["messages"][0]["role"] == "user"
    assert list(Dataset.from_hf(table, messages="messages")) == CHAT


def test_labelled_texts_from_hugging_face() -> None:
    datasets = _hf()
    table = datasets.Dataset.from_dict({"text": TEXTS, "label": LABELS})

    data = Dataset.from_hf(table, text="text", label="label")

    assert list(data) == list(Dataset.from_labels(TEXTS, LABELS))
    with pytest.raises(DatasetError, match="column 'answer' is not in the Hugging Face dataset"):
        Dataset.from_hf(table, text="text", label="answer")
