"""Per-model facts as data: training context, training prices, methods, retirement dates.

Prices and dates change; each table says when it was last checked (``PRICE_DATE``) and every
estimate repeats that date. Users override prices per call (``prices=``) rather than patching
this module. Look-ups go through :func:`~finetune_kit._tokens.base_model_name`, so ``ft:``
names, dated snapshots and checkpoints resolve to their base model.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final, Literal

from ._tokens import base_model_name

__all__ = [
    "DEFAULT_TRAINING_CONTEXT",
    "JOB_CREATION_ENDS",
    "PRICE_DATE",
    "TRAINING_PRICES_PER_MTOK",
    "ModelFacts",
    "default_n_epochs",
    "model_facts",
]

Method = Literal["supervised", "dpo", "reinforcement"]

#: When the price table below was last checked against the provider's pricing page.
PRICE_DATE: Final = dt.date(2026, 11, 1)

#: OpenAI stops accepting new fine-tuning jobs on this day (other endpoints continue).
JOB_CREATION_ENDS: Final = dt.date(2027, 1, 6)

#: Training context per example when a model is unknown: the largest current one, so an
#: unknown model never makes us reject a valid example (the service will say if it is too long).
DEFAULT_TRAINING_CONTEXT: Final = 65_536

#: USD per 1M training tokens (OpenAI, 2025-2026), by base model.
TRAINING_PRICES_PER_MTOK: Final[dict[str, float]] = {
    "gpt-4o-mini": 3.00,
    "gpt-3.5-turbo": 8.00,
    "gpt-4o": 25.00,
    "gpt-4.1": 25.00,
    "gpt-4.1-mini": 5.00,
    "gpt-4.1-nano": 1.50,
    "davinci-002": 6.00,
    "babbage-002": 0.40,
}


@dataclass(frozen=True)
class ModelFacts:
    """What we know about a base model for fine-tuning purposes."""

    base: str
    training_context: int
    methods: tuple[Method, ...]
    price_per_mtok: float | None
    """USD per 1M training tokens; None where unknown or billed otherwise (RFT: per hour)."""
    shutdown_date: dt.date | None
    """When OpenAI retires the base model (and every model tuned from it), if announced."""
    legacy_completion: bool = False
    """True for babbage-002/davinci-002, which train on prompt/completion pairs."""
    known: bool = True


_RETIRE_2027: Final = dt.date(2027, 1, 14)
_RETIRED_2026: Final = dt.date(2026, 10, 23)

_FACTS: Final[dict[str, ModelFacts]] = {
    f.base: f
    for f in (
        ModelFacts("gpt-4.1", 65_536, ("supervised", "dpo"), 25.00, _RETIRE_2027),
        ModelFacts("gpt-4.1-mini", 65_536, ("supervised", "dpo"), 5.00, _RETIRE_2027),
        ModelFacts("gpt-4.1-nano", 65_536, ("supervised", "dpo"), 1.50, _RETIRED_2026),
        ModelFacts("gpt-4o", 65_536, ("supervised", "dpo"), 25.00, _RETIRE_2027),
        ModelFacts("gpt-4o-mini", 65_536, ("supervised", "dpo"), 3.00, _RETIRE_2027),
        ModelFacts("gpt-3.5-turbo", 16_385, ("supervised",), 8.00, _RETIRED_2026),
        ModelFacts("o4-mini", 65_536, ("reinforcement",), None, _RETIRED_2026),
        ModelFacts("davinci-002", 16_384, ("supervised",), 6.00, None, legacy_completion=True),
        ModelFacts("babbage-002", 16_384, ("supervised",), 0.40, None, legacy_completion=True),
    )
}


def model_facts(model: str) -> ModelFacts:
    """Facts for ``model``'s base; unknown models get permissive defaults and ``known=False``."""
    base = base_model_name(model)
    facts = _FACTS.get(base)
    if facts is not None:
        return facts
    return ModelFacts(
        base=base,
        training_context=DEFAULT_TRAINING_CONTEXT,
        methods=("supervised", "dpo", "reinforcement"),
        price_per_mtok=TRAINING_PRICES_PER_MTOK.get(base),
        shutdown_date=None,
        known=False,
    )


def default_n_epochs(n_examples: int) -> int:
    """Epochs the service picks when none are given, for a dataset of ``n_examples``.

    3; fewer than 100 example-epochs raise it to ``min(25, 100 // n)``; more than 25,000
    lower it to ``max(1, 25,000 // n)``.
    """
    if n_examples <= 0:
        return 3
    if n_examples * 3 < 100:
        return min(25, 100 // n_examples)
    if n_examples * 3 > 25_000:
        return max(1, 25_000 // n_examples)
    return 3
