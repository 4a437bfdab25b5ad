"""The backend's own checks of training files (the service's documented rules)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from finetune_kit.facts._limits import MIN_TRAINING_EXAMPLES
from finetune_kit.local._validate import FileProblem, check_training_file

from .helpers import chat_line, jsonl, small_training_file, upload

if TYPE_CHECKING:
    from finetune_kit.local import LocalServer, ManualClock


def _with(line: Any, *, at: int = 2, n: int = 12) -> bytes:
    lines = small_training_file(n).decode().splitlines()
    lines[at] = line if isinstance(line, str) else json.dumps(line)
    return ("\n".join(lines) + "\n").encode()


def _msgs(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"messages": list(messages)}


USER = {"role": "user", "content": "hi"}
ANSWER = {"role": "assistant", "content": "ai"}


def test_a_valid_file_counts_its_examples() -> None:
    assert check_training_file(small_training_file(12), "supervised", training=True) == 12


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "JSON object"),
        ({"prompt": "x"}, "'messages'"),
        (_msgs(), "'messages'"),
        (_msgs(USER), "no assistant message"),
        (_msgs(USER, {**ANSWER, "weight": 0}), "no assistant message"),
        (_msgs(USER, {**ANSWER, "weight": 2}), "'weight'"),
        (_msgs({"role": "robot", "content": "x"}, ANSWER), "unknown role"),
        (_msgs({**USER, "mood": "happy"}, ANSWER), "unknown message key"),
        (_msgs(USER, {"role": "assistant"}), "no content"),
        (_msgs(USER, {"role": "assistant", "content": 3}), "must be a string"),
        (_msgs({"role": "user", "content": [{"type": "audio"}]}, ANSWER), "content part"),
        (_msgs(USER, {"role": "assistant", "content": "a<|endoftext|>"}), "<|endoftext|>"),
    ],
)
def test_supervised_rules_name_the_line(line: Any, why: str) -> None:
    with pytest.raises(FileProblem) as info:
        check_training_file(_with(line), "supervised", training=True)
    assert "Line 3: " in str(info.value)
    assert why in str(info.value)


@pytest.mark.parametrize(
    "line",
    [
        _msgs(USER, {"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]}),
        _msgs({"role": "user", "content": [{"type": "text", "text": "x"}]}, ANSWER),
        _msgs({"role": "system", "content": "s"}, USER, ANSWER, {"role": "tool", "content": "r"}),
    ],
)
def test_documented_shapes_are_accepted(line: Any) -> None:
    check_training_file(_with(line), "supervised", training=True)


def test_every_bad_line_is_named_up_to_five() -> None:
    lines = [json.dumps(chat_line("x", "ai"))] * 4 + ["{"] * 8
    with pytest.raises(FileProblem) as info:
        check_training_file("\n".join(lines).encode(), "supervised", training=True)
    message = str(info.value)
    assert [f"Line {n}: " in message for n in range(5, 13)] == [True] * 5 + [False] * 3
    assert "(and 3 more lines)" in message


def test_utf8_and_minimum_examples() -> None:
    with pytest.raises(FileProblem, match="UTF-8"):
        check_training_file(b"\xff\xfe{}\n", "supervised", training=True)
    few = small_training_file(MIN_TRAINING_EXAMPLES - 1)
    with pytest.raises(FileProblem, match=f"at least {MIN_TRAINING_EXAMPLES}"):
        check_training_file(few, "supervised", training=True)
    # Validation files have no minimum.
    assert check_training_file(few, "supervised", training=False) == MIN_TRAINING_EXAMPLES - 1


def test_dpo_and_reinforcement_shapes() -> None:
    good_dpo = {
        "input": {"messages": [USER]},
        "preferred_output": [ANSWER],
        "non_preferred_output": [{"role": "assistant", "content": "trivia"}],
    }
    assert check_training_file(jsonl([good_dpo] * 10), "dpo", training=True) == 10
    two = {**good_dpo, "preferred_output": [ANSWER, ANSWER]}
    with pytest.raises(FileProblem, match="exactly one assistant message"):
        check_training_file(jsonl([good_dpo] * 9 + [two]), "dpo", training=True)
    rft = {"messages": [USER], "answer": "ai"}
    assert check_training_file(jsonl([rft] * 10), "reinforcement", training=True) == 10
    ends_with_answer = {"messages": [USER, ANSWER]}
    with pytest.raises(FileProblem, match="last message must be a user"):
        check_training_file(jsonl([rft] * 9 + [ends_with_answer]), "reinforcement", training=True)


def test_a_job_on_a_bad_file_fails_naming_the_lines(
    clocked_server: LocalServer, clock: ManualClock
) -> None:
    client = clocked_server.client(max_retries=0)
    data = _with(_msgs(USER), at=4)
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=upload(client, data))
    clock.advance(0.6)
    job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "failed"
    assert job.error is not None
    assert job.error.message == (
        "The job failed due to an invalid training file. "
        "Invalid file format. Line 5: no assistant message to learn from."
    )
