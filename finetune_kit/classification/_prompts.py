"""Prompts: the system prompt classify() writes, the structured-output schema, user turns.

Two ways to build the messages of a request:

- *classify's own prompt* (plain :func:`~finetune_kit.classify` on a base model): a system
  message with the instructions and the label list, few-shot turns, then the text;
- *as trained* (:class:`~finetune_kit.ClassificationTask`, ``TunedModel.evaluate``): the
  conversation exactly as the model saw it in training. The label restriction rides on
  ``logit_bias`` or structured output; only the ``prompt`` rung, used when the endpoint
  allows neither, adds the label list (:func:`with_label_rule`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._labels import LabelSet
    from ._results import Technique

__all__ = [
    "ExamplesInput",
    "Message",
    "TextInput",
    "answer_rule",
    "structured_format",
    "system_prompt",
    "user_turns",
    "with_label_rule",
]

#: A chat message as the SDK takes it: ``{"role": ..., "content": ...}``.
Message = Mapping[str, Any]
#: What to classify: a string (sent as the user's message) or a whole conversation.
TextInput = str | Sequence[Message]
#: Few-shot examples: (text, label) pairs, shown to the model as earlier turns.
ExamplesInput = Sequence[tuple[str, str]]

#: The first line of the system prompt when the caller gives no instructions.
DEFAULT_INSTRUCTIONS = "Classify the text."


def _listing(labels: LabelSet, keys: tuple[str, ...] | None) -> str:
    """The label list for the system prompt: inline when short and plain, else one per line."""
    if keys is not None:
        return "\n".join(
            f"{key}: {name}" + (f" ({desc})" if desc else "")
            for key, name, desc in zip(keys, labels.names, labels.descriptions, strict=True)
        )
    if labels.described or any("," in n or "\n" in n for n in labels.names):
        return "\n" + "\n".join(
            f"- {name}" + (f": {desc}" if desc else "")
            for name, desc in zip(labels.names, labels.descriptions, strict=True)
        )
    return " " + ", ".join(labels.names)


def answer_rule(technique: Technique, labels: LabelSet, aliases: tuple[str, ...] | None) -> str:
    """The one sentence telling the model how to answer (also the re-ask message)."""
    if aliases is not None:
        kind = "letter" if len(aliases[0]) == 1 and aliases[0].isalpha() else "code"
        if aliases[0].isdigit():
            kind = "number"
        return f"Reply with only the {kind} of one label:\n{_listing(labels, aliases)}"
    if technique == "structured":
        return f"Labels:{_listing(labels, None)}"
    return f"Reply with only one of these labels:{_listing(labels, None)}"


# A cache of a pure function of immutable input.
@functools.lru_cache(maxsize=256)
def system_prompt(
    technique: Technique,
    labels: LabelSet,
    aliases: tuple[str, ...] | None,
    instructions: str | None,
) -> str:
    """Instructions (default :data:`DEFAULT_INSTRUCTIONS`), then the answer rule."""
    task = instructions.strip() if instructions else DEFAULT_INSTRUCTIONS
    return f"{task}\n{answer_rule(technique, labels, aliases)}"


def structured_format(labels: LabelSet) -> dict[str, Any]:
    """A strict JSON schema whose one property ``label`` is an ``enum`` of the labels."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "classification",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"label": {"type": "string", "enum": list(labels.names)}},
                "required": ["label"],
                "additionalProperties": False,
            },
        },
    }


def user_turns(text: TextInput) -> list[dict[str, Any]]:
    """A string as one user message, or a conversation's messages (copied, checked)."""
    if isinstance(text, str):
        return [{"role": "user", "content": text}]
    turns = [dict(m) for m in text]
    if not turns:
        raise ValueError("text is an empty list of messages")
    for turn in turns:
        if "role" not in turn:
            raise ValueError(f"every message needs a 'role': {turn!r}")
    return turns


def with_label_rule(messages: list[dict[str, Any]], labels: LabelSet) -> list[dict[str, Any]]:
    """An as-trained conversation for the ``prompt`` rung: the label list added once.

    The rule joins the conversation's own first system message (never a second system
    message); a conversation without one gets it as its first message.
    """
    rule = answer_rule("prompt", labels, None)
    if messages and messages[0].get("role") == "system":
        first = dict(messages[0])
        content = first.get("content")
        if isinstance(content, str):
            if rule not in content:
                first["content"] = f"{content}\n{rule}" if content else rule
            return [first, *messages[1:]]
    return [{"role": "system", "content": rule}, *messages]
