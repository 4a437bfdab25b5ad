"""Example-level rules: which format an example is in, and one rule family per format.

``detect_kind`` decides a dataset's format from its first examples; ``check_format`` says
whether an example is of that format; ``FAMILIES`` maps each format to its rule family
(``check_chat``, ``check_preference``, ``check_reinforcement``, ``check_completion``), built
from the message rules in ``_rules.py``. ``check_special_tokens`` and ``check_surrogates`` look
at every string of an example, whatever its format.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Final

from ..facts._tokens import SPECIAL_TOKENS
from ._codes import CLASSIFICATION_MAX_LABEL_CHARS, CLASSIFICATION_MAX_LABELS
from ._rules import (
    INPUT_KEYS,
    ROLES,
    TOP_LEVEL_KEYS,
    check_message,
    check_messages,
    check_tools,
    tool_names_of,
    unknown_keys,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from ._codes import Issue
    from ._reports import DatasetKind

__all__ = [
    "FAMILIES",
    "check_chat",
    "check_completion",
    "check_format",
    "check_preference",
    "check_reinforcement",
    "check_special_tokens",
    "check_surrogates",
    "detect_kind",
    "label_of",
    "looks_like_classification",
    "record_shape",
]

_KIND_SAMPLE: Final = 100  # records looked at to detect a file's format
# A UTF-16 surrogate code point: json decodes a valid escaped pair to one character, so any
# surrogate left in a decoded string is a lone one.
_SURROGATE: Final = re.compile("[\ud800-\udfff]")

# --- format detection ---------------------------------------------------------------------


def record_shape(record: object) -> str | None:
    """The format family an example looks like: ``messages``, ``preference``, ``completion``."""
    if not isinstance(record, dict):
        return None
    if "messages" in record:
        return "messages"
    if "input" in record or "preferred_output" in record or "non_preferred_output" in record:
        return "preference"
    if "prompt" in record or "completion" in record:
        return "completion"
    return None


def _is_rft_prompt(record: object) -> bool:
    """An RFT example: no assistant message, ends with the user, carries grader data."""
    if not isinstance(record, dict):
        return False
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        return False
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    extra = any(k not in TOP_LEVEL_KEYS["chat"] for k in record)
    return extra and "assistant" not in roles and roles[-1] == "user"


def detect_kind(records: Iterable[object]) -> DatasetKind:
    """Detect a dataset's format from its first 100 records.

    The most common family wins (the first seen on a tie); a ``messages`` dataset is
    ``reinforcement`` when every sampled example is a prompt with grader data (no assistant
    message, ending with the user, and a top-level key besides ``messages``/``tools``), else
    ``chat``. With nothing recognisable, ``chat``.
    """
    families: Counter[str] = Counter()
    all_prompts = True
    for i, record in enumerate(records):
        if i >= _KIND_SAMPLE:
            break
        shape = record_shape(record)
        if shape is None:
            continue
        families[shape] += 1
        if shape == "messages" and not _is_rft_prompt(record):
            all_prompts = False
    if not families:
        return "chat"
    family = families.most_common(1)[0][0]
    if family == "messages":
        return "reinforcement" if all_prompts else "chat"
    return "preference" if family == "preference" else "completion"


def label_of(record: object) -> str | None:
    """The label a classification example answers with: its final assistant content.

    None when the example does not end with a short (at most 64 characters), non-empty plain
    assistant answer without tool calls.
    """
    messages = record.get("messages") if isinstance(record, dict) else None
    if not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "assistant" or last.get("tool_calls"):
        return None
    content = last.get("content")
    if isinstance(content, str) and 0 < len(content) <= CLASSIFICATION_MAX_LABEL_CHARS:
        return content
    return None


def looks_like_classification(label_counts: Counter[str] | None, n_examples: int) -> bool:
    """The classification rule, given the labels of *all* examples (None if one had none).

    At least two distinct labels and at most ``min(50, max(2, n_examples // 2))``: a small set
    of short answers, each used on average at least twice.
    """
    if label_counts is None or n_examples < 2:
        return False
    limit = min(CLASSIFICATION_MAX_LABELS, max(2, n_examples // 2))
    return 2 <= len(label_counts) <= limit


def check_chat(record: dict[str, object]) -> Iterator[Issue]:
    """Supervised chat rules: the messages, something to train on, tools, extra keys."""
    messages = record.get("messages")
    yield from check_messages(messages, "messages", "chat", tool_names=tool_names_of(record))
    yield from check_tools(record)
    yield from unknown_keys(record, TOP_LEVEL_KEYS["chat"], "the example")
    if not isinstance(messages, list) or not messages:
        return
    assistants = [m for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
    if not assistants:
        yield (
            "missing_assistant",
            "messages has no assistant message: add the reply the model should learn",
        )
    elif all(m.get("weight", 1) == 0 for m in assistants):
        yield (
            "no_trainable_assistant",
            "every assistant message has weight 0, so nothing would be learnt: set weight 1 "
            "on at least one",
        )
    elif assistants[-1] is not messages[-1]:
        yield (
            "last_message_not_assistant",
            "messages continue after the last assistant message; those are not trained on",
        )


def check_preference(record: dict[str, object]) -> Iterator[Issue]:
    """Preference (DPO) rules: an input conversation and two one-message assistant outputs."""
    yield from unknown_keys(record, TOP_LEVEL_KEYS["preference"], "the example")
    given = record.get("input")
    if not isinstance(given, dict) or "messages" not in given:
        yield "invalid_input", "input must be an object with a 'messages' list"
    else:
        messages = given["messages"]
        yield from check_messages(
            messages, "input.messages", "preference", tool_names=tool_names_of(given)
        )
        yield from check_tools(given)
        yield from unknown_keys(given, INPUT_KEYS, "input")
    outputs = []
    for key in ("preferred_output", "non_preferred_output"):
        output = record.get(key)
        if (
            not isinstance(output, list)
            or len(output) != 1
            or not isinstance(output[0], dict)
            or output[0].get("role") != "assistant"
        ):
            yield (
                "invalid_preference_output",
                f"{key} must be a list holding exactly one assistant message",
            )
            continue
        outputs.append(output[0])
        yield from check_message(output[0], f"{key}[0]", ROLES["preference"], developer_ok=False)
    if len(outputs) == 2 and outputs[0] == outputs[1]:
        yield (
            "identical_outputs",
            "preferred_output and non_preferred_output are identical: nothing to prefer",
        )


def check_reinforcement(record: dict[str, object]) -> Iterator[Issue]:
    """Reinforcement rules: prompt messages ending with the user; other keys are grader data."""
    messages = record.get("messages")
    yield from check_messages(
        messages, "messages", "reinforcement", tool_names=tool_names_of(record)
    )
    yield from check_tools(record)
    if isinstance(messages, list) and messages:
        last = messages[-1]
        role = last.get("role") if isinstance(last, dict) else None
        if role != "user":
            yield (
                "last_message_not_user",
                f"messages ends with a {role!r} message; a reinforcement prompt ends with the "
                "user (the model writes the reply)",
            )


def check_completion(record: dict[str, object]) -> Iterator[Issue]:
    """Legacy completion rules (babbage-002, davinci-002): string prompt and completion."""
    yield from unknown_keys(record, TOP_LEVEL_KEYS["completion"], "the example")
    for key in ("prompt", "completion"):
        if not isinstance(record.get(key), str):
            yield "invalid_completion", f"{key} must be a string"


def _has_special_marker(value: object) -> bool:
    """Whether any string inside ``value`` contains ``<|`` (iterative: no depth limit)."""
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "<|" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside ``value`` with its path; iterative, so no depth limit applies."""
    stack: list[tuple[object, str]] = [(value, path)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            yield at, item
        elif isinstance(item, dict):
            stack.extend((v, f"{at}.{k}" if at else str(k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(item))


def check_special_tokens(record: object) -> Iterator[Issue]:
    """Special-token text anywhere in the example (content, names, arguments, outputs)."""
    if not _has_special_marker(record):
        return
    for at, text in _strings(record, ""):
        if "<|" not in text:
            continue
        for token in SPECIAL_TOKENS:
            if token in text:
                yield (
                    "special_token",
                    f"{at} contains {token!r}, which makes the training job fail: remove it",
                )


def check_surrogates(record: object) -> Iterator[Issue]:
    """Strings (keys included) holding a lone UTF-16 surrogate such as ``"\\ud800"``.

    JSON allows the escape, but the string is not text: it cannot be encoded as UTF-8, so the
    service cannot read it, and it is not what the writer meant (usually half of an emoji cut
    in two). Iterative, so no depth limit applies.
    """
    stack: list[tuple[object, str]] = [(record, "")]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            found = _SURROGATE.search(item)
            if found:
                yield (
                    "lone_surrogate",
                    f"{at or 'the example'} holds a lone surrogate \\u{ord(found.group()):04x}, "
                    "which is not text and cannot be encoded as UTF-8: remove it or write the "
                    "whole character",
                )
        elif isinstance(item, dict):
            for key, value in item.items():
                here = f"{at}.{key}" if at else str(key)
                if isinstance(key, str) and _SURROGATE.search(key):
                    yield (
                        "lone_surrogate",
                        f"the key {key.encode('utf-8', 'backslashreplace').decode()!r} in "
                        f"{at or 'the example'} holds a lone surrogate, which is not text",
                    )
                stack.append((value, here))
        elif isinstance(item, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(item))


FAMILIES: Final[dict[DatasetKind, Callable[[dict[str, object]], Iterator[Issue]]]] = {
    "chat": check_chat,
    "preference": check_preference,
    "reinforcement": check_reinforcement,
    "completion": check_completion,
}
_FAMILY_OF_KIND: Final[dict[DatasetKind, str]] = {
    "chat": "messages",
    "reinforcement": "messages",
    "preference": "preference",
    "completion": "completion",
}
_FORMAT_NAMES: Final = {
    "messages": "a chat/reinforcement example ('messages')",
    "preference": "a preference example ('input', 'preferred_output', ...)",
    "completion": "a completion example ('prompt', 'completion')",
}


def check_format(record: object, kind: DatasetKind) -> Iterator[Issue]:
    """Is the line an object of the dataset's format?"""
    if not isinstance(record, dict):
        yield "not_an_object", f"the line is a JSON {type(record).__name__}, not an object"
        return
    shape = record_shape(record)
    if shape is None:
        keys = ", ".join(map(repr, list(record)[:8])) or "none"
        yield (
            "unknown_format",
            "the object has none of the keys of a known format ('messages'; 'input' with "
            f"'preferred_output'/'non_preferred_output'; 'prompt'/'completion'); keys: {keys}",
        )
    elif shape != _FAMILY_OF_KIND[kind]:
        yield (
            "mixed_formats",
            f"this is {_FORMAT_NAMES[shape]} but the dataset holds {kind} examples: one file, "
            "one format (or force the format with kind=)",
        )
