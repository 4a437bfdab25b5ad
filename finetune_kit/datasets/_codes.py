"""The problem codes of dataset validation, with their severities, and shared constants.

Every code a check can report is in :data:`CODES`; docs/datasets.md explains each one and the
test suite holds a minimal bad example for each, so a code is never added without both.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

from ..facts._limits import MIN_TRAINING_EXAMPLES

if TYPE_CHECKING:
    from ._reports import Severity

__all__ = [
    "CLASSIFICATION_MAX_LABELS",
    "CLASSIFICATION_MAX_LABEL_CHARS",
    "CODES",
    "DECODER",
    "KEEP_FIRST_LINES",
    "MIN_EXAMPLES",
    "Issue",
]

Issue = tuple[str, str]
"""A problem before it knows its line: ``(code, message)``."""

#: Every problem code: its severity and what it means (docs/datasets.md explains each).
CODES: Final[dict[str, tuple[Severity, str]]] = {
    # the file and its lines
    "bom": ("error", "the file starts with a UTF-8 byte order mark"),
    "invalid_utf8": ("error", "a line is not valid UTF-8"),
    "invalid_json": ("error", "a line is not valid JSON"),
    "lone_surrogate": ("error", "a string holds a lone UTF-16 surrogate, which is not text"),
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
MIN_EXAMPLES: Final = MIN_TRAINING_EXAMPLES
#: Classification data: at most this many distinct labels...
CLASSIFICATION_MAX_LABELS: Final = 50
#: ...each at most this many characters.
CLASSIFICATION_MAX_LABEL_CHARS: Final = 64
#: Lines named in an aggregated warning (``missing_system``, ``missing_user``).
KEEP_FIRST_LINES: Final = 5


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON (write null or a number)")


# One decoder, built once: json.loads(..., parse_constant=...) would build one per call.
DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)
