"""Hypothesis: validation never raises, whatever the bytes or JSON it is given."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finetune_kit import Dataset
from finetune_kit.datasets._codes import CODES
from finetune_kit.datasets._rules import ROLES, check_message

if TYPE_CHECKING:
    from pathlib import Path

    from finetune_kit.datasets._reports import ValidationReport

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

# Values shaped like training data, so the fuzzing reaches the deeper rules.
roles = st.sampled_from(["system", "user", "assistant", "tool", "function", "developer", "x"])
texts = st.sampled_from(["", "Hi.", "<|endoftext|>", "{}", "{", "call_1", "f"]) | st.text(
    max_size=10
)
parts = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["text", "image_url", "audio"]),
        "text": texts | json_values,
        "image_url": st.fixed_dictionaries(
            {}, optional={"url": st.sampled_from(["https://a", "data:image/png;base64,x", "ftp:"])}
        )
        | json_values,
    },
)
calls = st.fixed_dictionaries(
    {},
    optional={
        "id": texts | json_values,
        "type": st.sampled_from(["function", "other"]),
        "function": st.fixed_dictionaries(
            {}, optional={"name": texts | json_values, "arguments": texts | json_values}
        )
        | json_values,
    },
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "role": roles | json_values,
        "content": texts | st.lists(parts | json_values, max_size=3) | json_values,
        "name": texts | json_values,
        "weight": st.sampled_from([0, 1, 2, 0.5, True, None]),
        "tool_calls": st.lists(calls | json_values, max_size=3) | json_values,
        "tool_call_id": texts | json_values,
        "function_call": calls | json_values,
    },
)
message_lists = st.lists(messages | json_values, max_size=5)
examples = st.one_of(
    st.fixed_dictionaries(
        {"messages": message_lists | json_values},
        optional={"tools": json_values | st.lists(st.just({"type": "function"})), "x": texts},
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "input": st.fixed_dictionaries({"messages": message_lists}) | json_values,
            "preferred_output": message_lists | json_values,
            "non_preferred_output": message_lists | json_values,
        },
    ),
    st.fixed_dictionaries({}, optional={"prompt": texts | json_values, "completion": texts}),
    json_values,
)


def _check(report: ValidationReport) -> None:
    assert "internal_error" not in report.counts, [str(p) for p in report.errors]
    for problem in report.problems:
        assert problem.code in CODES
        assert problem.severity == CODES[problem.code][0]


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(tmp_path_factory: Any, data: bytes) -> None:
    path: Path = tmp_path_factory.mktemp("fuzz") / "data.jsonl"
    path.write_bytes(data)
    ds = Dataset.from_jsonl(path)
    _check(ds.validate(workers=1))
    ds.stats(workers=1)
    ds.estimate_cost(model="gpt-4.1-mini")


@FUZZ
@given(st.lists(json_values, max_size=12))
def test_arbitrary_json_records(records: list[Any]) -> None:
    ds = Dataset.from_records(records)
    _check(ds.validate())
    ds.stats()
    assert isinstance(ds.kind, str)


@FUZZ
@given(
    st.lists(examples, max_size=12),
    st.sampled_from([None, "gpt-4.1-mini", "gpt-3.5-turbo"]),
    st.sampled_from([None, "chat", "preference", "reinforcement", "completion"]),
)
def test_training_shaped_records(records: list[Any], model: str | None, kind: Any) -> None:
    _check(Dataset.from_records(records, kind=kind).validate(model=model))


@FUZZ
@given(st.lists(examples, max_size=12))
def test_file_and_records_agree(tmp_path_factory: Any, records: list[Any]) -> None:
    path: Path = tmp_path_factory.mktemp("fuzz") / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), "utf-8")
    from_file = Dataset.from_jsonl(path).validate(workers=1)
    in_memory = Dataset.from_records(records).validate()
    _check(from_file)
    # A record never is a blank line; and files compare lines byte for byte while records
    # compare as data, so key order makes duplicates differ (documented).
    drop = {"blank_line", "duplicate_example"}
    assert {p.code for p in from_file.problems} - drop == {
        p.code for p in in_memory.problems
    } - drop


@FUZZ
@given(
    st.sampled_from(["system", "user", "assistant"]),
    st.text(min_size=1, max_size=30),
    st.sampled_from(["chat", "preference", "reinforcement"]),
)
def test_plain_message_fast_path_is_sound(role: str, content: str, kind: str) -> None:
    """What check_messages skips as plain, check_message would not flag either."""
    message = {"role": role, "content": content}
    allowed = ROLES[kind]  # type: ignore[index]
    assert list(check_message(message, "m[0]", allowed, developer_ok=False)) == []
