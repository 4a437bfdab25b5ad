"""The backend's own checks of training files, as the service documents them.

Deliberately independent of the SDK's ``Dataset`` validator (the backend must never check
the client with the client's own code): only the service's documented rules, from the
fine-tuning guide and the API reference (see docs/local-backend.md) — UTF-8, one JSON
object per line, each method's shape, no special tokens, at least
:data:`~finetune_kit.facts._limits.MIN_TRAINING_EXAMPLES` examples in a training file. A
failed check names the offending lines the way the service's job error does.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ..facts._limits import MIN_TRAINING_EXAMPLES
from ..facts._tokens import SPECIAL_TOKENS

__all__ = ["FileProblem", "check_training_file"]

_ROLES: Final = frozenset({"system", "user", "assistant", "tool", "function", "developer"})
_MESSAGE_KEYS: Final = frozenset(
    {"role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call"}
)
#: How many offending lines a job error names before it says "and N more".
_NAMED_LINES: Final = 5


class FileProblem(Exception):
    """Why a file was rejected: a message naming the offending lines."""


def _special(text: str) -> str | None:
    return next((token for token in SPECIAL_TOKENS if token in text), None)


def _content_problem(message: dict[str, Any]) -> str | None:
    role = message.get("role")
    content = message.get("content")
    if content is None:
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            return None
        return f"a {role} message has no content"
    if isinstance(content, str):
        texts = [content]
    elif isinstance(content, list) and role in ("user", "system", "developer"):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in ("text", "image_url"):
                return "a content part is not a text or image_url part"
            if part["type"] == "text":
                if not isinstance(part.get("text"), str):
                    return "a text part has no text"
                texts.append(part["text"])
    else:
        return f"the content of a {role} message must be a string"
    for text in texts:
        token = _special(text)
        if token is not None:
            return f"content contains the special token {token}"
    return None


def _messages_problem(messages: Any, *, needs_answer: bool) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list"
    learns = False
    for message in messages:
        if not isinstance(message, dict):
            return "each message must be an object"
        role = message.get("role")
        if role not in _ROLES:
            return f"unknown role {role!r}"
        unknown = sorted(set(message) - _MESSAGE_KEYS)
        if unknown:
            return f"unknown message key {unknown[0]!r}"
        if "weight" in message and (role != "assistant" or message["weight"] not in (0, 1)):
            return "'weight' must be 0 or 1, on assistant messages only"
        problem = _content_problem(message)
        if problem is not None:
            return problem
        if role == "assistant" and message.get("weight", 1) == 1:
            learns = True
    if needs_answer and not learns:
        return "no assistant message to learn from"
    return None


def _output_problem(output: Any, key: str) -> str | None:
    if not isinstance(output, list) or len(output) != 1 or not isinstance(output[0], dict):
        return f"'{key}' must hold exactly one assistant message"
    if output[0].get("role") != "assistant":
        return f"'{key}' must be an assistant message"
    return _content_problem(output[0])


def _line_problem(item: Any, method: str) -> str | None:
    if not isinstance(item, dict):
        return "each line must be a JSON object"
    if method == "dpo":
        given = item.get("input")
        if not isinstance(given, dict):
            return "missing 'input' object"
        problem = _messages_problem(given.get("messages"), needs_answer=False)
        for key in ("preferred_output", "non_preferred_output"):
            problem = problem or _output_problem(item.get(key), key)
        return problem
    if method == "reinforcement":
        messages = item.get("messages")
        problem = _messages_problem(messages, needs_answer=False)
        if problem is None and isinstance(messages, list) and messages[-1].get("role") != "user":
            return "the last message must be a user message"
        return problem
    return _messages_problem(item.get("messages"), needs_answer=True)


def check_training_file(data: bytes, method: str, *, training: bool) -> int:
    """Check a training (or validation) file for ``method``; return its example count.

    Raises:
        FileProblem: The file breaks a documented rule; the message names the lines.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"The file is not UTF-8 (byte {exc.start}).") from None
    bad: list[tuple[int, str]] = []
    examples = 0
    for number, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        examples += 1
        try:
            item = json.loads(raw)
        except json.JSONDecodeError:
            problem: str | None = "not valid JSON"
        else:
            problem = _line_problem(item, method)
        if problem is not None:
            bad.append((number, problem))
    if bad:
        named = "; ".join(f"Line {n}: {p}" for n, p in bad[:_NAMED_LINES])
        more = f" (and {len(bad) - _NAMED_LINES} more lines)" if len(bad) > _NAMED_LINES else ""
        raise FileProblem(f"Invalid file format. {named}{more}.")
    if training and examples < MIN_TRAINING_EXAMPLES:
        raise FileProblem(
            f"Training file has {examples} example(s), but must have at least "
            f"{MIN_TRAINING_EXAMPLES} examples."
        )
    return examples
