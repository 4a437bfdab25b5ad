"""Rules for messages, their content and tool calls: the families every format shares.

Each rule family is a generator of issues, ``(code, message)`` pairs, over already-parsed
JSON; nothing here raises on bad input (every value is type-checked before use). The
example-level families (chat, preference, reinforcement, completion) in ``_examples.py`` are
built from these.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from ._codes import DECODER

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ._codes import Issue
    from ._reports import DatasetKind

__all__ = [
    "INPUT_KEYS",
    "ROLES",
    "TOP_LEVEL_KEYS",
    "check_content",
    "check_message",
    "check_messages",
    "check_tool_calls",
    "check_tools",
    "tool_names_of",
    "unknown_keys",
]

ROLES: Final[dict[DatasetKind, frozenset[str]]] = {
    "chat": frozenset({"system", "user", "assistant", "tool", "function", "developer"}),
    "preference": frozenset({"system", "user", "assistant", "tool", "developer"}),
    "reinforcement": frozenset({"system", "user", "assistant", "tool", "developer"}),
    "completion": frozenset(),
}
_PLAIN_ROLES: Final[dict[DatasetKind, frozenset[str]]] = {
    kind: roles - {"tool", "function", "developer"} for kind, roles in ROLES.items()
}
_MESSAGE_KEYS: Final = frozenset(
    {"role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call"}
)
TOP_LEVEL_KEYS: Final[dict[str, frozenset[str]]] = {
    "chat": frozenset({"messages", "tools", "parallel_tool_calls", "functions"}),
    "preference": frozenset({"input", "preferred_output", "non_preferred_output"}),
    "completion": frozenset({"prompt", "completion"}),
}
INPUT_KEYS: Final = frozenset({"messages", "tools", "parallel_tool_calls"})
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DETAILS: Final = frozenset({"low", "high", "auto"})


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
    roles = ROLES[kind]
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
        DECODER.decode(arguments)
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


def unknown_keys(record: dict[str, object], allowed: frozenset[str], at: str) -> Iterator[Issue]:
    """A warning naming the keys of ``record`` outside ``allowed``."""
    extra = [k for k in record if k not in allowed]
    if extra:
        yield (
            "unknown_key",
            f"{at} has key(s) {', '.join(map(repr, extra))} that the format does not define "
            "(the service may reject or ignore them)",
        )
