"""Which data format each fine-tuning method trains on, and which models take which format.

One table, read wherever data meets a method or a model: dataset validation
(``model_format_mismatch``) and job creation (refusing a file of the wrong kind before any
request is sent).

- ``supervised`` trains on chat examples (``messages``), or on prompt/completion pairs for the
  legacy completion models (babbage-002, davinci-002), which take nothing else;
- ``dpo`` trains on preference examples (``input``, ``preferred_output``,
  ``non_preferred_output``);
- ``reinforcement`` trains on prompts (``messages`` ending with the user, plus grader data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from ._models import Method, ModelFacts

__all__ = ["DATA_KINDS", "KINDS_FOR_METHOD", "DataKind", "format_mismatch", "method_for_kind"]

DataKind = Literal["chat", "preference", "reinforcement", "completion"]
"""The training data formats (a dataset's ``kind``)."""

#: Every data kind, in the order the docs list them.
DATA_KINDS: Final[tuple[DataKind, ...]] = ("chat", "preference", "reinforcement", "completion")

#: The data kinds each fine-tuning method trains on.
KINDS_FOR_METHOD: Final[dict[Method, frozenset[DataKind]]] = {
    "supervised": frozenset({"chat", "completion"}),
    "dpo": frozenset({"preference"}),
    "reinforcement": frozenset({"reinforcement"}),
}

_METHOD_OF_KIND: Final[dict[DataKind, Method]] = {
    kind: method for method, kinds in KINDS_FOR_METHOD.items() for kind in kinds
}


def method_for_kind(kind: DataKind) -> Method:
    """The fine-tuning method that trains on ``kind`` data."""
    return _METHOD_OF_KIND[kind]


def format_mismatch(
    kind: DataKind, facts: ModelFacts, *, method: Method | None = None
) -> str | None:
    """Why ``facts.base`` cannot be trained on ``kind`` data (with ``method``), or None.

    Args:
        kind: the data's format.
        facts: the model's facts (see ``facts._models.model_facts``); for an unknown model
            only the method/format table applies.
        method: the method asked for; None means the one that trains on ``kind``.

    Returns:
        A sentence naming the model, the format and what it needs instead; None when they fit.
    """
    wanted = method if method is not None else method_for_kind(kind)
    allowed = KINDS_FOR_METHOD[wanted]
    if kind not in allowed:
        return f"method={wanted!r} trains on {' or '.join(sorted(allowed))} data, not {kind} data"
    if not facts.known:
        return None
    if facts.legacy_completion != (kind == "completion"):
        needs = "prompt/completion" if facts.legacy_completion else "chat (messages)"
        return f"{facts.base} trains on {needs} examples, not {kind} ones"
    if wanted not in facts.methods:
        return (
            f"{facts.base} cannot be fine-tuned with {wanted} "
            f"(it supports: {', '.join(facts.methods)})"
        )
    return None
