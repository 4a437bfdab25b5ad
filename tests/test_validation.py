"""Every validation code, each triggered by a minimal bad example; plus the rules' edges."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from finetune_kit import Dataset, DatasetValidationError, Problem, ValidationReport
from finetune_kit.datasets import _examples
from finetune_kit.datasets._checker import CheckConfig, Tally
from finetune_kit.datasets._codes import CODES
from finetune_kit.datasets._examples import detect_kind
from finetune_kit.datasets._finish import DatasetFacts, finish

if TYPE_CHECKING:
    from pathlib import Path

    from finetune_kit.datasets._reports import DatasetKind

SYSTEM = {"role": "system", "content": "You are terse."}


def chat(i: int, answer: str = "Hi.") -> dict[str, Any]:
    return {
        "messages": [
            SYSTEM,
            {"role": "user", "content": f"Question number {i}?"},
            {"role": "assistant", "content": answer},
        ]
    }


def preference(i: int) -> dict[str, Any]:
    return {
        "input": {"messages": [{"role": "user", "content": f"Question {i}?"}]},
        "preferred_output": [{"role": "assistant", "content": "Good."}],
        "non_preferred_output": [{"role": "assistant", "content": "Bad."}],
    }


def reinforcement(i: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"Solve {i}."}], "answer": str(i)}


def completion(i: int) -> dict[str, Any]:
    return {"prompt": f"Say {i}:", "completion": f" {i}"}


FILLERS = {
    "chat": chat,
    "preference": preference,
    "reinforcement": reinforcement,
    "completion": completion,
}


def fillers(kind: DatasetKind, n: int = 9) -> list[dict[str, Any]]:
    return [FILLERS[kind](i) for i in range(100, 100 + n)]


def msgs(*messages: Any, **top: Any) -> dict[str, Any]:
    return {"messages": list(messages), **top}


USER = {"role": "user", "content": "Hello, world!"}
ASSISTANT = {"role": "assistant", "content": "Hi."}
CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {}}}]


@dataclass
class Case:
    """A minimal dataset that must produce ``code`` at ``line``."""

    record: Any = None
    lines: list[bytes] | None = None
    kind: DatasetKind = "chat"
    model: str | None = None
    line: int | None = 1
    records: list[Any] | None = None


CASES: dict[str, Case] = {
    "bom": Case(lines=[b"\xef\xbb\xbf" + json.dumps(chat(1)).encode()]),
    "invalid_utf8": Case(lines=[b'{"messages": "caf\xe9"}']),
    "invalid_json": Case(lines=[b'{"messages": [']),
    # Valid JSON (the escape is ASCII), but the string is not text: no UTF-8 encoding exists.
    "lone_surrogate": Case(lines=[json.dumps(chat(1, answer="half an emoji \ud83d")).encode()]),
    "blank_line": Case(lines=[b"   "]),
    "not_an_object": Case(lines=[b"[1, 2]"]),
    "not_serializable": Case(record={**chat(1), "extra": {1, 2}}),
    "unknown_format": Case(record={"conversation": []}),
    "mixed_formats": Case(record=preference(1)),
    "unknown_key": Case(record={**chat(1), "metadata": {"source": "web"}}),
    "model_format_mismatch": Case(record=chat(1), model="davinci-002", line=None),
    "invalid_messages": Case(record={"messages": "Hello"}),
    "empty_messages": Case(record={"messages": []}),
    "message_not_object": Case(record=msgs(USER, "Hi.", ASSISTANT)),
    "missing_role": Case(record=msgs({"content": "Hello"}, ASSISTANT)),
    "unknown_role": Case(record=msgs({"role": "robot", "content": "x"}, USER, ASSISTANT)),
    "developer_role": Case(record=msgs({"role": "developer", "content": "x"}, USER, ASSISTANT)),
    "unknown_message_key": Case(record=msgs({**USER, "lang": "en"}, ASSISTANT)),
    "missing_content": Case(record=msgs({"role": "user"}, ASSISTANT)),
    "invalid_content": Case(record=msgs({"role": "user", "content": 5}, ASSISTANT)),
    "empty_content": Case(record=msgs({"role": "user", "content": ""}, ASSISTANT)),
    "invalid_content_part": Case(
        record=msgs({"role": "user", "content": [{"type": "input_audio"}]}, ASSISTANT)
    ),
    "image_outside_user": Case(
        record=msgs(
            USER,
            {
                "role": "assistant",
                "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}],
            },
        )
    ),
    "invalid_name": Case(record=msgs({**USER, "name": "Bob Smith!"}, ASSISTANT)),
    "invalid_weight": Case(record=msgs(USER, {**ASSISTANT, "weight": 2})),
    "special_token": Case(record=msgs(USER, {"role": "assistant", "content": "Hi<|endoftext|>"})),
    "missing_assistant": Case(record=msgs(SYSTEM, USER)),
    "no_trainable_assistant": Case(record=msgs(USER, {**ASSISTANT, "weight": 0})),
    "last_message_not_assistant": Case(record=msgs(USER, ASSISTANT, USER)),
    "missing_system": Case(record=msgs(USER, ASSISTANT), line=None),
    "missing_user": Case(record=msgs(SYSTEM, ASSISTANT), line=None),
    "invalid_tool_call": Case(
        record=msgs(
            USER,
            {
                "role": "assistant",
                "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "{"}}],
            },
        )
    ),
    "missing_tool_call_id": Case(
        record=msgs(
            USER,
            {"role": "assistant", "tool_calls": [CALL]},
            {"role": "tool", "content": "42"},
            ASSISTANT,
        )
    ),
    "unmatched_tool_call_id": Case(
        record=msgs(
            USER,
            {"role": "assistant", "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_9", "content": "42"},
            ASSISTANT,
        )
    ),
    "invalid_tools": Case(record=msgs(USER, ASSISTANT, tools="f")),
    "unknown_tool": Case(
        record=msgs(
            USER,
            {
                "role": "assistant",
                "tool_calls": [{**CALL, "function": {"name": "g", "arguments": "{}"}}],
            },
            tools=TOOLS,
        )
    ),
    "invalid_input": Case(record={**preference(1), "input": "Question?"}, kind="preference"),
    "invalid_preference_output": Case(
        record={**preference(1), "preferred_output": []}, kind="preference"
    ),
    "identical_outputs": Case(
        record={**preference(1), "non_preferred_output": preference(1)["preferred_output"]},
        kind="preference",
    ),
    "last_message_not_user": Case(
        record={"messages": [USER, ASSISTANT], "answer": "x"}, kind="reinforcement"
    ),
    "invalid_completion": Case(record={"prompt": 1, "completion": "x"}, kind="completion"),
    "too_many_tokens": Case(record=chat(1, answer="hello " * 16_500), model="gpt-3.5-turbo"),
    "too_few_examples": Case(records=[chat(1), chat(2)], line=None),
    "duplicate_example": Case(records=[chat(1), *fillers("chat"), chat(1)], line=11),
    "label_first_token_collision": Case(
        records=[chat(i, answer=("very good", "very bad", "neutral")[i % 3]) for i in range(12)],
        model="gpt-4.1-mini",
        line=None,
    ),
}


def report_for(case: Case, tmp_path: Path) -> ValidationReport:
    if case.lines is not None:
        good = [json.dumps(r).encode() for r in fillers(case.kind)]
        path = tmp_path / "data.jsonl"
        path.write_bytes(b"\n".join([*case.lines, *good]) + b"\n")
        ds = Dataset.from_jsonl(path, kind=case.kind)
    else:
        records = case.records if case.records is not None else [case.record, *fillers(case.kind)]
        ds = Dataset.from_records(records, kind=case.kind)
    return ds.validate(model=case.model)


def test_every_code_has_a_case() -> None:
    assert set(CASES) | {"internal_error", "large_file", "file_too_large"} == set(CODES)


@pytest.mark.parametrize("code", sorted(CASES))
def test_minimal_bad_example(code: str, tmp_path: Path) -> None:
    case = CASES[code]
    report = report_for(case, tmp_path)
    found = [p for p in report.problems if p.code == code]
    assert found, f"{code} not reported; got {[str(p) for p in report.problems]}"
    problem = found[0]
    assert problem.line == case.line
    assert problem.severity == CODES[code][0]
    assert len(problem.message) > 20
    assert report.ok is not any(p.severity == "error" for p in report.problems)


@pytest.mark.parametrize("kind", ["chat", "preference", "reinforcement", "completion"])
def test_clean_datasets_have_no_problems(kind: DatasetKind) -> None:
    report = Dataset.from_records(fillers(kind, 12)).validate()
    assert report.problems == []
    assert report.ok
    assert report.kind == kind


def test_tool_conversation_images_and_weights_are_valid() -> None:
    """The cookbook flags all of these; the service accepts them."""
    image = {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBOR", "detail": "low"},
    }
    record = msgs(
        SYSTEM,
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}, image]},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny."},
        {"role": "assistant", "content": "Sunny.", "weight": 1},
        {"role": "user", "content": "Thanks", "name": "bob_1"},
        {"role": "assistant", "content": "Welcome.", "weight": 0},
        tools=TOOLS,
        parallel_tool_calls=False,
    )
    report = Dataset.from_records([record, *fillers("chat")]).validate()
    assert report.problems == [], [str(p) for p in report.problems]


def test_internal_error_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(record: dict[str, object]) -> list[tuple[str, str]]:
        raise KeyError(f"boom in {len(record)} keys")

    monkeypatch.setitem(_examples.FAMILIES, "chat", broken)
    report = Dataset.from_records(fillers("chat", 10)).validate()
    assert {p.code for p in report.errors} == {"internal_error"}
    assert report.counts["internal_error"] == 10


@pytest.mark.parametrize(
    ("size", "code"), [(600 * 1024**2, "large_file"), (9 * 1024**3, "file_too_large")]
)
def test_file_size_limits(size: int, code: str) -> None:
    config = CheckConfig(kind="chat", encoding="o200k_base", training_context=65_536)
    tally = Tally(n_examples=10)
    facts = DatasetFacts(source="x", kind="chat", model=None, facts=None, size_bytes=size)
    report, _ = finish(tally, config, facts)
    assert [p.code for p in report.problems] == [code]
    assert report.problems[0].severity == CODES[code][0]


def test_one_bad_line_does_not_stop_the_others(tmp_path: Path) -> None:
    lines = [json.dumps(chat(i)).encode() for i in range(12)]
    lines[2] = b"{broken"
    lines[7] = json.dumps(msgs(SYSTEM, USER)).encode()
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = Dataset.from_jsonl(path).validate()
    assert [(p.line, p.code) for p in report.errors] == [
        (3, "invalid_json"),
        (8, "missing_assistant"),
    ]


def test_problems_are_capped_per_code_but_counted(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"nope\n" * 250)
    report = Dataset.from_jsonl(path).validate()
    assert report.counts["invalid_json"] == 250
    assert len([p for p in report.problems if p.code == "invalid_json"]) == 100
    assert report.n_errors == 250


def test_raise_for_errors() -> None:
    report = Dataset.from_records([msgs(USER)] * 2).validate()
    with pytest.raises(DatasetValidationError) as info:
        report.raise_for_errors()
    assert info.value.problems[0].code == "too_few_examples"
    assert "missing_assistant" in str(info.value)
    Dataset.from_records(fillers("chat", 10)).validate().raise_for_errors()  # no error


def test_problem_str_names_line_and_code() -> None:
    problem = Problem(line=12, code="missing_assistant", severity="error", message="add one")
    assert str(problem) == "line 12: missing_assistant: add one"
    assert str(problem.model_copy(update={"line": None})) == "dataset: missing_assistant: add one"


def test_mixed_formats_line_numbers(tmp_path: Path) -> None:
    rows = [chat(i) for i in range(10)] + [preference(1), completion(1)]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = Dataset.from_jsonl(path).validate()
    assert [(p.line, p.code) for p in report.errors] == [
        (11, "mixed_formats"),
        (12, "mixed_formats"),
    ]


@pytest.mark.parametrize(
    ("rows", "kind"),
    [
        ([chat(1)], "chat"),
        ([preference(1), chat(1), preference(2)], "preference"),
        ([reinforcement(1), reinforcement(2)], "reinforcement"),
        ([msgs(USER), msgs(USER)], "chat"),  # no grader data: a broken chat file, not RFT
        ([completion(1)], "completion"),
        ([{"x": 1}, "text"], "chat"),
    ],
)
def test_detect_kind(rows: list[object], kind: str) -> None:
    assert detect_kind(rows) == kind


def test_reinforcement_allows_developer_and_grader_keys() -> None:
    rows = [
        {"messages": [{"role": "developer", "content": "Be exact."}, USER], "ref": i, "tags": []}
        for i in range(10)
    ]
    report = Dataset.from_records(rows).validate(model="o4-mini")
    assert report.kind == "reinforcement"
    assert report.problems == []


def test_model_format_mismatch_for_preference_on_sft_only_model() -> None:
    report = Dataset.from_records(fillers("preference", 10)).validate(model="gpt-3.5-turbo")
    assert [p.code for p in report.errors] == ["model_format_mismatch"]
    assert "dpo" in report.errors[0].message


def test_special_token_escaped_in_json(tmp_path: Path) -> None:
    record = chat(1, answer="<|endofprompt|>")
    path = tmp_path / "t.jsonl"
    escaped = json.dumps(record).replace("<", "\\u003C")  # same JSON, '<' escaped
    path.write_text("\n".join([escaped, *(json.dumps(r) for r in fillers("chat"))]) + "\n")
    report = Dataset.from_jsonl(path).validate()
    assert [(p.line, p.code) for p in report.errors] == [(1, "special_token")]


def test_nan_is_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"messages": [], "x": NaN}\n')
    assert "invalid_json" in {p.code for p in Dataset.from_jsonl(path).validate().problems}


def test_deep_nesting_is_invalid_json_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"[" * 100_000 + b"\n")
    report = Dataset.from_jsonl(path).validate()
    assert "nested too deeply" in report.errors[1].message


def test_classification_rule() -> None:
    assert Dataset.from_labels(["a", "b", "c", "d"], ["x", "y", "x", "y"]).labels == [
        "x",
        "y",
        "x",
        "y",
    ]
    # every answer distinct: free text, not classification
    assert Dataset.from_labels(["a", "b", "c", "d"], ["w", "x", "y", "z"]).labels is None
    assert not Dataset.from_pairs(["a", "b"], ["x" * 65, "y" * 65]).is_classification
    assert not Dataset.from_records(fillers("preference", 10)).is_classification


def test_lone_surrogates_are_found_wherever_they_are(tmp_path: Path) -> None:
    """In keys, in nested values, escaped in upper case; a valid pair is an emoji, not an error."""
    lines = [
        b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", '
        b'"content": "ok \\uD800"}]}',
        json.dumps(
            {**chat(2), "tools": [{"type": "function", "function": {"name": "f\udfff"}}]}
        ).encode(),
        json.dumps({**chat(3), "\ud800key": 1}).encode(),
        json.dumps(chat(4, answer="smile \U0001f600")).encode(),  # an escaped pair: fine
        b'{"messages": [{"role": "user", "content": "a backslash: \\\\ud800"}, '
        b'{"role": "assistant", "content": "x"}]}',  # an escaped backslash, then text
    ]
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\n".join([*lines, *(json.dumps(chat(i)).encode() for i in range(9)), b""]))
    report = Dataset.from_jsonl(path).validate()
    found = [(p.line, p.message) for p in report.problems if p.code == "lone_surrogate"]
    assert [line for line, _ in found] == [1, 2, 3]
    assert "messages[1].content" in found[0][1]
    assert "\\ud800" in found[0][1]
    assert "tools[0].function.name" in found[1][1]
    # In memory, the same string is reported the same way (not as unserialisable).
    memory = Dataset.from_records([chat(1, answer="x\ud800"), *fillers("chat")]).validate()
    assert [p.code for p in memory.errors] == ["lone_surrogate"]


def test_method_and_format_rules_are_one_table() -> None:
    """facts._formats decides for validation (model_format_mismatch) and for jobs alike."""
    from finetune_kit.facts._formats import KINDS_FOR_METHOD, format_mismatch, method_for_kind
    from finetune_kit.facts._models import model_facts

    assert {kind: method_for_kind(kind) for kind in ("chat", "completion")} == {
        "chat": "supervised",
        "completion": "supervised",
    }
    assert KINDS_FOR_METHOD["dpo"] == {"preference"}
    mini, davinci, o4 = (
        model_facts("gpt-4.1-mini"),
        model_facts("davinci-002"),
        model_facts("o4-mini"),
    )
    assert format_mismatch("chat", mini) is None
    assert format_mismatch("preference", mini) is None
    assert "trains on preference data, not chat" in str(format_mismatch("chat", mini, method="dpo"))
    assert "prompt/completion" in str(format_mismatch("chat", davinci))
    assert "chat (messages)" in str(format_mismatch("completion", mini))
    assert "cannot be fine-tuned with supervised" in str(format_mismatch("chat", o4))
    assert format_mismatch("reinforcement", o4) is None
    # An unknown model: only the method/format table applies.
    assert format_mismatch("completion", model_facts("my-deployment")) is None
    report = Dataset.from_records(fillers("preference", 12)).validate(model="gpt-3.5-turbo")
    assert [p.message for p in report.errors] == [
        str(format_mismatch("preference", model_facts("gpt-3.5-turbo")))
    ]
