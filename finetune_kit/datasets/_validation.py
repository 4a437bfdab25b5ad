"""The validation rules: pure functions over parsed examples, one function per rule family.

Each family (``check_messages``, ``check_tool_calls``, ``check_chat``, ...) yields *issues*,
``(code, message)`` pairs; :class:`Checker` attaches the line and the code's severity from
:data:`CODES` and accumulates them, with the token counts, into a :class:`Tally`. A tally is
plain picklable data, so large files are checked in chunks by worker processes and the tallies
merged in line order (``_dataset.py`` drives that); :func:`finish` adds the dataset-level
problems (too few examples, duplicates, label collisions, ...) and builds the public results.

Nothing here raises on bad input: every value is type-checked before use, and the JSON parser's
own failures (including ``RecursionError`` on absurd nesting) become ``invalid_json`` problems.
"""

from __future__ import annotations

import json
import logging
import re
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from ..facts._tokens import SPECIAL_TOKENS, TokenCounter, get_encoding
from ._reports import DatasetKind, DatasetStats, Distribution, Problem, Severity, ValidationReport

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from ..facts._models import ModelFacts

__all__ = [
    "CLASSIFICATION_MAX_LABELS",
    "CLASSIFICATION_MAX_LABEL_CHARS",
    "CODES",
    "MIN_EXAMPLES",
    "CheckConfig",
    "Checker",
    "DatasetFacts",
    "Tally",
    "check_chunk",
    "check_range",
    "check_records",
    "detect_kind",
    "finish",
    "label_of",
    "looks_like_classification",
    "record_shape",
    "warm_up",
]

logger = logging.getLogger("finetune_kit")

Issue = tuple[str, str]
"""A problem before it knows its line: ``(code, message)``."""

#: Every problem code: its severity and what it means (docs/datasets.md explains each).
CODES: Final[dict[str, tuple[Severity, str]]] = {
    # the file and its lines
    "bom": ("error", "the file starts with a UTF-8 byte order mark"),
    "invalid_utf8": ("error", "a line is not valid UTF-8"),
    "invalid_json": ("error", "a line is not valid JSON"),
    "blank_line": ("warning", "an empty line between examples (skipped)"),
    "not_an_object": ("error", "a line is JSON but not an object"),
    "not_serializable": ("error", "an in-memory record cannot be written as JSON"),
    "large_file": ("warning", "over 512 MB: needs the Uploads API instead of the Files API"),
    "file_too_large": ("error", "over 8 GB: the service accepts no larger file"),
    # formats
    "unknown_format": ("error", "an object with none of the keys of a known format"),
    "mixed_formats": ("error", "an example of another format than the rest of the file"),
    "unknown_key": ("warning", "a top-level key the format does not define"),
    "model_format_mismatch": ("error", "the model cannot be trained on this format"),
    # messages
    "invalid_messages": ("error", "messages is not a list"),
    "empty_messages": ("error", "messages is an empty list"),
    "message_not_object": ("error", "a message is not an object"),
    "missing_role": ("error", "a message has no role"),
    "unknown_role": ("error", "a role the format does not allow"),
    "developer_role": ("warning", "the developer role is not documented for training files"),
    "unknown_message_key": ("error", "a message key the service does not accept"),
    "missing_content": ("error", "a message has no content (and no tool call)"),
    "invalid_content": ("error", "content is neither a string nor a list of parts"),
    "empty_content": ("warning", "content is an empty string"),
    "invalid_content_part": ("error", "a content part is malformed or of an unsupported type"),
    "image_outside_user": ("error", "an image part in a message that is not from the user"),
    "invalid_name": ("error", "name is not 1-64 letters, digits, '_' or '-'"),
    "invalid_weight": ("error", "weight is not 0 or 1, or is on a non-assistant message"),
    "special_token": ("error", "text such as <|endoftext|> that makes the job fail"),
    # chat
    "missing_assistant": ("error", "no assistant message to learn from"),
    "no_trainable_assistant": ("error", "every assistant message has weight 0"),
    "last_message_not_assistant": ("warning", "messages after the last assistant turn"),
    "missing_system": ("warning", "examples without a system message"),
    "missing_user": ("warning", "examples without a user message"),
    # tools
    "invalid_tool_call": ("error", "a malformed tool_calls entry or function_call"),
    "missing_tool_call_id": ("error", "a tool message without tool_call_id"),
    "unmatched_tool_call_id": ("error", "a tool reply to a call no assistant made"),
    "invalid_tools": ("error", "malformed top-level tools, functions or parallel_tool_calls"),
    "unknown_tool": ("warning", "a call to a function the example's tools do not define"),
    # preference, reinforcement, completion
    "invalid_input": ("error", "preference input is not an object with messages"),
    "invalid_preference_output": ("error", "an output is not exactly one assistant message"),
    "identical_outputs": ("warning", "preferred and non-preferred outputs are the same"),
    "last_message_not_user": ("error", "a reinforcement prompt must end with a user message"),
    "invalid_completion": ("error", "prompt or completion is missing or not a string"),
    # tokens and the dataset as a whole
    "too_many_tokens": ("error", "an example longer than the model's training context"),
    "too_few_examples": ("error", "fewer than 10 examples"),
    "duplicate_example": ("warning", "an example identical to an earlier one"),
    "label_first_token_collision": ("warning", "two labels start with the same token"),
    "internal_error": ("error", "a bug in finetune_kit while checking an example"),
}

#: The service's minimum number of training examples.
MIN_EXAMPLES: Final = 10
#: Classification data: at most this many distinct labels...
CLASSIFICATION_MAX_LABELS: Final = 50
#: ...each at most this many characters.
CLASSIFICATION_MAX_LABEL_CHARS: Final = 64
_FILES_API_LIMIT: Final = 512 * 1024**2
_UPLOADS_API_LIMIT: Final = 8 * 1024**3
_KEEP_FIRST_LINES: Final = 5  # lines named in an aggregated warning
_KIND_SAMPLE: Final = 100  # records looked at to detect a file's format

_ROLES: Final[dict[DatasetKind, frozenset[str]]] = {
    "chat": frozenset({"system", "user", "assistant", "tool", "function", "developer"}),
    "preference": frozenset({"system", "user", "assistant", "tool", "developer"}),
    "reinforcement": frozenset({"system", "user", "assistant", "tool", "developer"}),
    "completion": frozenset(),
}
_PLAIN_ROLES: Final[dict[DatasetKind, frozenset[str]]] = {
    kind: roles - {"tool", "function", "developer"} for kind, roles in _ROLES.items()
}
_MESSAGE_KEYS: Final = frozenset(
    {"role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call"}
)
_TOP_LEVEL_KEYS: Final[dict[str, frozenset[str]]] = {
    "chat": frozenset({"messages", "tools", "parallel_tool_calls", "functions"}),
    "preference": frozenset({"input", "preferred_output", "non_preferred_output"}),
    "completion": frozenset({"prompt", "completion"}),
}
_INPUT_KEYS: Final = frozenset({"messages", "tools", "parallel_tool_calls"})
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DETAILS: Final = frozenset({"low", "high", "auto"})
_BOM: Final = b"\xef\xbb\xbf"


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON (write null or a number)")


# One decoder, built once: json.loads(..., parse_constant=...) would build one per call.
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


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
    extra = any(k not in _TOP_LEVEL_KEYS["chat"] for k in record)
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


# --- rule families --------------------------------------------------------------------------


def _where(field_name: str, index: int) -> str:
    return f"{field_name}[{index}]"


def check_content(message: dict[str, object], role: object, at: str) -> Iterator[Issue]:
    """Content rules: string or list of text/image parts; images only from the user."""
    if "content" not in message or message["content"] is None:
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            return
        yield "missing_content", f"{at} ({role}) has no content: add a 'content' string"
        return
    content = message["content"]
    if isinstance(content, str):
        if not content:
            yield "empty_content", f"{at}.content ({role}) is an empty string"
        return
    if not isinstance(content, list) or not content:
        kind = "an empty list" if isinstance(content, list) else type(content).__name__
        yield "invalid_content", f"{at}.content is {kind}: use a string or a list of parts"
        return
    for j, part in enumerate(content):
        yield from _check_part(part, role, f"{at}.content[{j}]")


def _check_part(part: object, role: object, at: str) -> Iterator[Issue]:
    if not isinstance(part, dict):
        yield "invalid_content_part", f"{at} is not an object with a 'type'"
        return
    ptype = part.get("type")
    if ptype == "text":
        if not isinstance(part.get("text"), str):
            yield "invalid_content_part", f"{at} is a text part without a 'text' string"
        return
    if ptype != "image_url":
        yield (
            "invalid_content_part",
            f"{at} has type {ptype!r}: training data takes 'text' and 'image_url' parts only",
        )
        return
    if role != "user":
        yield "image_outside_user", f"{at} is an image in a {role} message: only user may"
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else None
    if not isinstance(url, str):
        yield "invalid_content_part", f"{at}.image_url needs a 'url' string"
        return
    if not (url.startswith("https://") or (url.startswith("data:image/") and ";base64," in url)):
        yield (
            "invalid_content_part",
            f"{at}.image_url.url must be an https URL or a base64 data URL (data:image/...)",
        )
    detail = image.get("detail") if isinstance(image, dict) else None
    if detail is not None and (not isinstance(detail, str) or detail not in _DETAILS):
        yield "invalid_content_part", f"{at}.image_url.detail must be low, high or auto"


def check_message(
    message: object, at: str, roles: frozenset[str], *, developer_ok: bool
) -> Iterator[Issue]:
    """Rules for one message: object, role, keys, content, name and weight."""
    if not isinstance(message, dict):
        yield "message_not_object", f"{at} is {type(message).__name__}, not an object"
        return
    role = message.get("role")
    if role is None:
        yield "missing_role", f"{at} has no 'role'"
    elif not isinstance(role, str) or role not in roles:
        allowed = ", ".join(sorted(roles - {"developer"}))
        yield "unknown_role", f"{at}.role is {role!r}; use one of {allowed}"
    elif role == "developer" and not developer_ok:
        yield (
            "developer_role",
            f"{at}.role is 'developer', which is not documented for training files: use 'system'",
        )
    unknown = [k for k in message if k not in _MESSAGE_KEYS]
    if unknown:
        yield (
            "unknown_message_key",
            f"{at} has key(s) {', '.join(map(repr, unknown))} the service does not accept",
        )
    yield from check_content(message, role, at)
    if "name" in message:
        name = message["name"]
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            yield (
                "invalid_name",
                f"{at}.name is {name!r}: use 1-64 letters, digits, '_' or '-'",
            )
    if "weight" in message:
        weight = message["weight"]
        if role != "assistant":
            yield "invalid_weight", f"{at}.weight is only allowed on assistant messages"
        elif isinstance(weight, bool) or weight not in (0, 1):
            yield "invalid_weight", f"{at}.weight is {weight!r}: use 0 (skip) or 1 (train)"


def check_messages(
    messages: object, at: str, kind: DatasetKind, *, tool_names: frozenset[str] | None
) -> Iterator[Issue]:
    """Rules for a list of messages: each message, then tool calls and replies across them."""
    if not isinstance(messages, list):
        yield "invalid_messages", f"{at} is {type(messages).__name__}, not a list of messages"
        return
    if not messages:
        yield "empty_messages", f"{at} is empty: add the conversation's messages"
        return
    roles = _ROLES[kind]
    plain = _PLAIN_ROLES[kind]
    irregular = False
    for i, message in enumerate(messages):
        # Fast path: {"role": <plain role>, "content": "<non-empty>"} breaks no message rule
        # (the test suite checks this); most messages of most files look like that.
        if (
            type(message) is dict
            and len(message) == 2
            and type(message.get("role")) is str
            and message["role"] in plain
            and type(message.get("content")) is str
            and message["content"]
        ):
            continue
        irregular = True
        yield from check_message(
            message, _where(at, i), roles, developer_ok=kind == "reinforcement"
        )
    if irregular:  # tool calls and replies are never plain messages
        yield from check_tool_calls(messages, at, tool_names=tool_names)


def _check_function(function: object, at: str) -> Iterator[Issue]:
    if not isinstance(function, dict):
        yield "invalid_tool_call", f"{at} must be an object with 'name' and 'arguments'"
        return
    name = function.get("name")
    if not isinstance(name, str) or not name:
        yield "invalid_tool_call", f"{at}.name must be a non-empty string"
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        yield "invalid_tool_call", f"{at}.arguments must be a string holding JSON"
        return
    try:
        _DECODER.decode(arguments)
    except (ValueError, RecursionError):
        yield "invalid_tool_call", f"{at}.arguments is not valid JSON: {arguments[:60]!r}"


def check_tool_calls(
    messages: list[object], at: str, *, tool_names: frozenset[str] | None
) -> Iterator[Issue]:
    """Tool-call rules: well-formed calls, unique ids, every tool reply answers a call."""
    call_ids: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        here = _where(at, i)
        role = message.get("role")
        if "function_call" in message:
            yield from _check_function(message["function_call"], f"{here}.function_call")
        if "tool_calls" in message:
            calls = message["tool_calls"]
            if role != "assistant":
                yield "invalid_tool_call", f"{here}.tool_calls is only allowed on assistant"
            elif not isinstance(calls, list) or not calls:
                yield "invalid_tool_call", f"{here}.tool_calls must be a non-empty list"
            else:
                yield from _check_calls(calls, f"{here}.tool_calls", call_ids, tool_names)
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                yield "missing_tool_call_id", f"{here} (tool) needs the 'tool_call_id' it answers"
            elif call_id not in call_ids:
                yield (
                    "unmatched_tool_call_id",
                    f"{here}.tool_call_id {call_id!r} answers no earlier assistant tool call",
                )
        elif "tool_call_id" in message:
            yield "unknown_message_key", f"{here}.tool_call_id is only allowed on tool messages"


def _check_calls(
    calls: list[object], at: str, seen: set[str], tool_names: frozenset[str] | None
) -> Iterator[Issue]:
    for j, call in enumerate(calls):
        here = _where(at, j)
        if not isinstance(call, dict):
            yield "invalid_tool_call", f"{here} is not an object"
            continue
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            yield "invalid_tool_call", f"{here}.id must be a non-empty string"
        elif call_id in seen:
            yield "invalid_tool_call", f"{here}.id {call_id!r} is used twice in this example"
        else:
            seen.add(call_id)
        if call.get("type") != "function":
            yield "invalid_tool_call", f"{here}.type must be 'function'"
        function = call.get("function")
        yield from _check_function(function, f"{here}.function")
        name = function.get("name") if isinstance(function, dict) else None
        if tool_names is not None and isinstance(name, str) and name not in tool_names:
            yield "unknown_tool", f"{here} calls {name!r}, which the example's tools do not define"


def check_tools(record: dict[str, object]) -> Iterator[Issue]:
    """Top-level ``tools`` / ``functions`` / ``parallel_tool_calls`` rules."""
    if "tools" in record:
        tools = record["tools"]
        if not isinstance(tools, list):
            yield "invalid_tools", "tools must be a list of function definitions"
        else:
            for i, tool in enumerate(tools):
                function = tool.get("function") if isinstance(tool, dict) else None
                if (
                    not isinstance(tool, dict)
                    or tool.get("type") != "function"
                    or not isinstance(function, dict)
                ):
                    yield "invalid_tools", f"tools[{i}] must be {{'type': 'function', ...}}"
                elif not isinstance(function.get("name"), str):
                    yield "invalid_tools", f"tools[{i}].function needs a 'name' string"
                elif not isinstance(function.get("parameters", {}), dict):
                    yield "invalid_tools", f"tools[{i}].function.parameters must be an object"
    if "functions" in record:
        functions = record["functions"]
        if not isinstance(functions, list) or not all(
            isinstance(f, dict) and isinstance(f.get("name"), str) for f in functions
        ):
            yield "invalid_tools", "functions must be a list of objects with a 'name'"
    if "parallel_tool_calls" in record and not isinstance(record["parallel_tool_calls"], bool):
        yield "invalid_tools", "parallel_tool_calls must be true or false"


def tool_names_of(record: dict[str, object]) -> frozenset[str] | None:
    """Names of the functions an example defines, or None when it defines none."""
    names: list[str] = []
    for key in ("tools", "functions"):
        items = record.get(key)
        if not isinstance(items, list):
            continue
        for item in items:
            function = item.get("function", item) if isinstance(item, dict) else None
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                names.append(function["name"])
    return frozenset(names) if names else None


def _unknown_keys(record: dict[str, object], allowed: frozenset[str], at: str) -> Iterator[Issue]:
    extra = [k for k in record if k not in allowed]
    if extra:
        yield (
            "unknown_key",
            f"{at} has key(s) {', '.join(map(repr, extra))} that the format does not define "
            "(the service may reject or ignore them)",
        )


def check_chat(record: dict[str, object]) -> Iterator[Issue]:
    """Supervised chat rules: the messages, something to train on, tools, extra keys."""
    messages = record.get("messages")
    yield from check_messages(messages, "messages", "chat", tool_names=tool_names_of(record))
    yield from check_tools(record)
    yield from _unknown_keys(record, _TOP_LEVEL_KEYS["chat"], "the example")
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
    yield from _unknown_keys(record, _TOP_LEVEL_KEYS["preference"], "the example")
    given = record.get("input")
    if not isinstance(given, dict) or "messages" not in given:
        yield "invalid_input", "input must be an object with a 'messages' list"
    else:
        messages = given["messages"]
        yield from check_messages(
            messages, "input.messages", "preference", tool_names=tool_names_of(given)
        )
        yield from check_tools(given)
        yield from _unknown_keys(given, _INPUT_KEYS, "input")
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
        yield from check_message(output[0], f"{key}[0]", _ROLES["preference"], developer_ok=False)
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
    yield from _unknown_keys(record, _TOP_LEVEL_KEYS["completion"], "the example")
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


_FAMILIES = {
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


# --- checking examples ---------------------------------------------------------------------


@dataclass(frozen=True)
class CheckConfig:
    """What a worker needs to check examples: plain data, cheap to send to a process."""

    kind: DatasetKind
    encoding: str
    training_context: int
    max_per_code: int = 100


@dataclass
class Tally:
    """Everything one chunk of examples contributes to the report and the statistics.

    Lines are numbered from 1 within the chunk; :meth:`merge` renumbers a later chunk's lines
    after this one's. ``hashes`` has one entry per line (0 where there is no example), so its
    length is the number of lines seen.
    """

    n_examples: int = 0
    problems: list[Problem] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    aggregated: Counter[str] = field(default_factory=Counter)
    aggregated_lines: dict[str, list[int]] = field(default_factory=dict)
    tokens: Counter[int] = field(default_factory=Counter)
    trained: Counter[int] = field(default_factory=Counter)
    messages: Counter[int] = field(default_factory=Counter)
    total_tokens: int = 0
    assistant_tokens: int = 0
    billable_tokens: int = 0
    n_over_limit: int = 0
    hashes: array[int] = field(default_factory=lambda: array("Q"))
    labels: Counter[str] | None = field(default_factory=Counter)

    def add(self, line: int | None, code: str, message: str, max_per_code: int) -> None:
        """Record a problem, keeping only the first ``max_per_code`` of each code."""
        self.counts[code] += 1
        if self.counts[code] <= max_per_code:
            self.problems.append(
                Problem(line=line, code=code, severity=CODES[code][0], message=message)
            )

    def merge(self, other: Tally, max_per_code: int) -> None:
        """Add the next chunk's tally to this one, renumbering its lines to follow ours."""
        offset = len(self.hashes)
        self.n_examples += other.n_examples
        kept = Counter(p.code for p in self.problems)
        for problem in other.problems:
            if kept[problem.code] < max_per_code:
                kept[problem.code] += 1
                if offset and problem.line is not None:
                    problem = problem.model_copy(update={"line": problem.line + offset})
                self.problems.append(problem)
        self.counts.update(other.counts)
        self.aggregated.update(other.aggregated)
        for code, lines in other.aggregated_lines.items():
            mine = self.aggregated_lines.setdefault(code, [])
            mine.extend(line + offset for line in lines[: _KEEP_FIRST_LINES - len(mine)])
        self.tokens.update(other.tokens)
        self.trained.update(other.trained)
        self.messages.update(other.messages)
        self.total_tokens += other.total_tokens
        self.assistant_tokens += other.assistant_tokens
        self.billable_tokens += other.billable_tokens
        self.n_over_limit += other.n_over_limit
        self.hashes.extend(other.hashes)
        if self.labels is not None and other.labels is not None:
            self.labels.update(other.labels)
            if len(self.labels) > CLASSIFICATION_MAX_LABELS:
                self.labels = None
        else:
            self.labels = None


def _hash(data: bytes) -> int:
    # Python's own 64-bit SipHash: twenty times cheaper per line than hashlib, and consistent
    # within one validation, whose workers are forked from the one process (same hash seed).
    # A collision among a billion examples has odds of about 3%, and only makes a duplicate
    # warning wrong, never an error. Never 0, which marks "no example".
    return (hash(data) & 0xFFFF_FFFF_FFFF_FFFF) or 1


class Checker:
    """Checks examples one by one into a :class:`Tally` (one per chunk)."""

    def __init__(self, config: CheckConfig, counter: TokenCounter) -> None:
        self.config = config
        self.counter = counter
        self.family = _FAMILIES[config.kind]

    def line(self, tally: Tally, raw: bytes, line: int, *, first_of_file: bool) -> None:
        """Check one raw line of a JSONL file (without its ``\\n``)."""
        keep = self.config.max_per_code
        if first_of_file and raw.startswith(_BOM):
            tally.add(
                line,
                "bom",
                "the file starts with a byte order mark: save it as UTF-8 without BOM",
                keep,
            )
            raw = raw[len(_BOM) :]
        body = raw.strip()
        if not body:
            tally.hashes.append(0)
            tally.add(line, "blank_line", "the line is empty: remove it", keep)
            return
        tally.n_examples += 1
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            tally.hashes.append(0)
            tally.labels = None
            tally.add(
                line,
                "invalid_utf8",
                f"the line is not valid UTF-8 (byte 0x{body[exc.start]:02x} at offset "
                f"{exc.start}): save the file as UTF-8",
                keep,
            )
            return
        try:
            record = _DECODER.decode(text)
        except (ValueError, RecursionError) as exc:
            tally.hashes.append(0)
            tally.labels = None
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            tally.add(line, "invalid_json", f"the line is not valid JSON: {reason}", keep)
            return
        tally.hashes.append(_hash(body))
        # Special-token text needs a '<' in the line, raw or escaped as \u003c: skip the walk
        # over every string when neither is there (nearly always).
        maybe_special = b"<" in body or b"\\u003" in body
        self.example(tally, record, line, maybe_special=maybe_special)

    def record(self, tally: Tally, record: object, line: int) -> None:
        """Check one in-memory record (its 1-based position is its ``line``)."""
        tally.n_examples += 1
        try:
            data = json.dumps(
                record, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
        except (TypeError, ValueError, RecursionError) as exc:
            tally.hashes.append(0)
            tally.add(
                line,
                "not_serializable",
                f"the record cannot be written as JSON ({type(exc).__name__}: {exc})",
                self.config.max_per_code,
            )
            return  # it cannot be uploaded; and it may be circular, so walk no further
        tally.hashes.append(_hash(data))
        self.example(tally, record, line, maybe_special=True)

    def example(self, tally: Tally, record: object, line: int, *, maybe_special: bool) -> None:
        """Apply every rule family to a parsed example and count its tokens."""
        keep = self.config.max_per_code
        try:
            issues = list(check_format(record, self.config.kind))
            if not issues and isinstance(record, dict):
                issues.extend(self.family(record))
                if maybe_special:
                    issues.extend(check_special_tokens(record))
                self._count(tally, record, line)
                self._aggregate(tally, record, line)
            else:
                tally.labels = None
        except Exception as exc:  # a bug must not hide the other lines' problems
            logger.exception("finetune_kit failed to check line %s", line)
            issues = [("internal_error", f"checking failed ({type(exc).__name__}: {exc})")]
        for code, message in issues:
            tally.add(line, code, message, keep)

    def _aggregate(self, tally: Tally, record: dict[str, object], line: int) -> None:
        if self.config.kind != "chat":
            return
        messages = record.get("messages")
        if not isinstance(messages, list):
            tally.labels = None
            return
        roles = [m.get("role") for m in messages if isinstance(m, dict)]
        for role, code in (("system", "missing_system"), ("user", "missing_user")):
            if role not in roles:
                tally.aggregated[code] += 1
                lines = tally.aggregated_lines.setdefault(code, [])
                if len(lines) < _KEEP_FIRST_LINES:
                    lines.append(line)
        if tally.labels is not None:
            label = label_of(record)
            if label is None:
                tally.labels = None
            else:
                tally.labels[label] += 1
                if len(tally.labels) > CLASSIFICATION_MAX_LABELS:
                    tally.labels = None

    def _count(self, tally: Tally, record: dict[str, object], line: int) -> None:
        counter = self.counter
        limit = self.config.training_context
        kind = self.config.kind
        messages = record.get("messages")
        n_messages = len(messages) if isinstance(messages, list) else 0
        if kind == "preference":
            given = record.get("input")
            given = given if isinstance(given, dict) else {}
            prompt = given.get("messages")
            prompt = prompt if isinstance(prompt, list) else []
            tools = given.get("tools")
            sequences = []
            trained = 0
            for key in ("preferred_output", "non_preferred_output"):
                output = record.get(key)
                output = output if isinstance(output, list) else []
                sequence, _ = counter.messages(prompt + output, tools=tools)
                sequences.append(sequence)
                trained += sum(counter.message(m)[1] for m in output)
            total = sum(sequences)
            billable = sum(min(limit, n) for n in sequences)
            longest = max(sequences)
            n_messages = len(prompt) + 1
        elif kind == "completion":
            prompt_text, completion = record.get("prompt"), record.get("completion")
            trained = counter.count(completion) if isinstance(completion, str) else 0
            total = trained + (counter.count(prompt_text) if isinstance(prompt_text, str) else 0)
            billable, longest, n_messages = min(limit, total), total, 2
        else:
            tools = record.get("tools", record.get("functions"))
            total, trained = counter.messages(messages, tools=tools)
            if kind == "reinforcement":
                trained = 0  # the prompt is not trained on; the model's own replies are graded
            billable, longest = min(limit, total), total
        tally.tokens[total] += 1
        tally.trained[trained] += 1
        tally.messages[n_messages] += 1
        tally.total_tokens += total
        tally.assistant_tokens += trained
        tally.billable_tokens += billable
        if longest > limit:
            tally.n_over_limit += 1
            tally.add(
                line,
                "too_many_tokens",
                f"the example has {longest:,} tokens; the model trains on at most {limit:,} "
                "per example: shorten it or split it",
                self.config.max_per_code,
            )


_counters: dict[str, TokenCounter] = {}


def _counter(encoding: str) -> TokenCounter:
    # One counter per process and encoding, so its cache of repeated strings is shared.
    counter = _counters.get(encoding)
    if counter is None:
        counter = _counters[encoding] = TokenCounter(get_encoding(encoding))
    return counter


def warm_up(encoding: str) -> None:
    """Load ``encoding`` in this process now (before forking workers that inherit it)."""
    _counter(encoding)


def check_chunk(config: CheckConfig, chunk: bytes, *, file_start: bool) -> Tally:
    """Check a chunk of whole lines of a JSONL file, numbering them from 1.

    ``file_start`` says the chunk begins the file (where a byte order mark is looked for).
    """
    checker = Checker(config, _counter(config.encoding))
    tally = Tally()
    lines = chunk.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the chunk ends with a newline: no line after it
    for line, raw in enumerate(lines, 1):
        checker.line(tally, raw, line, first_of_file=file_start and line == 1)
    return tally


def check_range(config: CheckConfig, path: str, start: int, end: int) -> Tally:
    """Check bytes ``start:end`` of the file at ``path`` (whole lines), numbered from 1.

    This is what worker processes run: each reads its own range, so the parent sends a few
    numbers per task instead of the data. The serial path runs it too, so both agree exactly.
    """
    with open(path, "rb") as file:  # noqa: PTH123 - a plain path string crosses processes
        file.seek(start)
        chunk = file.read(end - start)
    return check_chunk(config, chunk, file_start=start == 0)


def check_records(config: CheckConfig, records: Sequence[object]) -> Tally:
    """Check in-memory records; each one's 1-based position is its line."""
    checker = Checker(config, _counter(config.encoding))
    tally = Tally()
    for i, record in enumerate(records, 1):
        checker.record(tally, record, i)
    return tally


# --- the dataset as a whole -------------------------------------------------------------------


def _duplicates(hashes: array[int]) -> Iterator[tuple[int, int]]:
    """``(line, first line)`` of every example identical to an earlier one.

    Memory stays small for millions of lines: a first pass counts hashes into a bytearray of
    saturating buckets (16 buckets per line, so few distinct hashes share one); only lines in
    buckets hit twice are then looked up in a dict.
    """
    bits = max(10, min(28, (len(hashes) * 16).bit_length()))
    shift = 64 - bits
    buckets = bytearray(1 << bits)
    for h in hashes:
        if h:
            i = h >> shift
            if buckets[i] < 2:
                buckets[i] += 1
    seen: dict[int, int] = {}
    for index, h in enumerate(hashes):
        if h and buckets[h >> shift] == 2:
            first = seen.setdefault(h, index + 1)
            if first != index + 1:
                yield index + 1, first


@dataclass(frozen=True)
class DatasetFacts:
    """What :func:`finish` needs to know about the dataset besides the tally."""

    source: str | None
    kind: DatasetKind
    model: str | None
    facts: ModelFacts | None
    size_bytes: int | None


def finish(
    tally: Tally, config: CheckConfig, dataset: DatasetFacts
) -> tuple[ValidationReport, DatasetStats]:
    """Add the dataset-level problems to a merged tally and build the report and stats."""
    keep = config.max_per_code
    head = Tally()  # dataset-level problems, listed first
    if tally.n_examples < MIN_EXAMPLES:
        head.add(
            None,
            "too_few_examples",
            f"the dataset has {tally.n_examples} example(s); the service needs at least "
            f"{MIN_EXAMPLES}",
            keep,
        )
    size = dataset.size_bytes
    if size is not None and size > _UPLOADS_API_LIMIT:
        head.add(None, "file_too_large", f"the file has {size:,} bytes; the limit is 8 GB", keep)
    elif size is not None and size > _FILES_API_LIMIT:
        head.add(
            None,
            "large_file",
            f"the file has {size:,} bytes, over the Files API's 512 MB: it must go through the "
            "Uploads API (in 64 MB parts)",
            keep,
        )
    facts = dataset.facts
    if facts is not None and facts.known:
        problem = _format_mismatch(dataset.kind, facts)
        if problem:
            head.add(None, "model_format_mismatch", problem, keep)
    for code, lines in tally.aggregated_lines.items():
        n = tally.aggregated[code]
        role = "system" if code == "missing_system" else "user"
        shown = ", ".join(map(str, lines)) + (", ..." if n > len(lines) else "")
        head.add(
            None,
            code,
            f"{n:,} of {tally.n_examples:,} examples have no {role} message (lines {shown})",
            keep,
        )
    labels = (
        tally.labels
        if dataset.kind == "chat" and looks_like_classification(tally.labels, tally.n_examples)
        else None
    )
    if labels is not None and dataset.model is not None:
        for message in _label_collisions(sorted(labels), _counter(config.encoding)):
            head.add(None, "label_first_token_collision", message, keep)
    for line, first in _duplicates(tally.hashes):
        tally.add(line, "duplicate_example", f"the example is identical to line {first}", keep)
    head.merge(tally, keep)
    problems = sorted(head.problems, key=lambda p: (p.line is not None, p.line or 0))
    report = ValidationReport(
        source=dataset.source,
        kind=dataset.kind,
        model=dataset.model,
        n_examples=tally.n_examples,
        problems=problems,
        counts=dict(sorted(head.counts.items())),
        max_per_code=keep,
    )
    stats = DatasetStats(
        model=dataset.model,
        encoding=config.encoding,
        kind=dataset.kind,
        n_examples=sum(tally.tokens.values()),
        total_tokens=tally.total_tokens,
        assistant_tokens=tally.assistant_tokens,
        billable_tokens=tally.billable_tokens,
        training_context=config.training_context,
        n_over_limit=tally.n_over_limit,
        tokens_per_example=Distribution.from_counts(tally.tokens),
        assistant_tokens_per_example=Distribution.from_counts(tally.trained),
        messages_per_example=Distribution.from_counts(tally.messages),
        label_counts=dict(sorted(labels.items())) if labels is not None else None,
    )
    return report, stats


def _format_mismatch(kind: DatasetKind, facts: ModelFacts) -> str | None:
    method = {"chat": "supervised", "completion": "supervised", "preference": "dpo"}.get(
        kind, "reinforcement"
    )
    if facts.legacy_completion != (kind == "completion"):
        wanted = "prompt/completion" if facts.legacy_completion else "chat (messages)"
        return f"{facts.base} trains on {wanted} examples, not {kind} ones"
    if method not in facts.methods:
        methods = ", ".join(facts.methods)
        return f"{facts.base} cannot be fine-tuned with {method} (it supports: {methods})"
    return None


def _label_collisions(labels: list[str], counter: TokenCounter) -> Iterator[str]:
    """One message per group of labels whose first token (in the model's encoding) is shared."""
    groups: dict[int, list[str]] = {}
    for label in labels:
        tokens = counter.encoding.encode_ordinary(label)
        if tokens:
            groups.setdefault(tokens[0], []).append(label)
    for token, group in groups.items():
        if len(group) > 1:
            first = counter.encoding.decode([token])
            yield (
                f"labels {', '.join(map(repr, group))} all start with the token {first!r}: a "
                "classifier reading the first token cannot tell them apart (rename them, or "
                "classify() will use aliases)"
            )
