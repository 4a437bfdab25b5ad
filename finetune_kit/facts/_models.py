"""Per-model facts as data, per endpoint: context, methods, prices, tiers, lifecycle dates.

The facts belong to the endpoint they describe: OpenAI's retirement dates and prices apply to
api.openai.com, Azure's to Azure OpenAI / Foundry, and an unknown OpenAI-compatible server
(including finetune_kit's local backend) has no lifecycle dates at all. Each endpoint's table
(:class:`FactsTable`) says when it was last checked and where; every estimate repeats that
date. Users override facts with :meth:`FactsTable.with_models` and pass the table as
``table=``, rather than patching this module. Look-ups go through
:func:`~finetune_kit.facts._tokens.base_model_name`, so ``ft:`` names, Azure ``.ft-`` ids,
dated snapshots and checkpoints resolve to their base model.

This module is the one place for: the ``Method`` literal, default epochs, training prices and
lifecycle dates (``tests/test_facts_once.py`` checks that nothing else defines them).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal

from ._endpoints import EndpointKind, check_endpoint_kind
from ._tokens import base_model_name

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "AZURE_FACTS",
    "DEFAULT_TRAINING_CONTEXT",
    "JOB_CREATION_ENDS",
    "OPENAI_FACTS",
    "OTHER_FACTS",
    "PRICE_DATE",
    "TRAINING_PRICES_PER_MTOK",
    "FactsTable",
    "Method",
    "ModelFacts",
    "Tier",
    "default_n_epochs",
    "facts_table",
    "lifecycle_dates",
    "model_facts",
]

Method = Literal["supervised", "dpo", "reinforcement"]
"""A fine-tuning method: supervised (SFT), preference (DPO) or reinforcement (RFT)."""

METHODS: Final[tuple[Method, ...]] = ("supervised", "dpo", "reinforcement")

Tier = Literal["standard", "global", "developer"]
"""An Azure training tier: regional Standard, Global (cheaper, no data residency) or
Developer (cheaper still, pre-emptible capacity)."""

#: Training context per example when a model is unknown: the largest current one, so an
#: unknown model never makes us reject a valid example (the service will say if it is too long).
DEFAULT_TRAINING_CONTEXT: Final = 65_536


@dataclass(frozen=True)
class ModelFacts:
    """What we know about a base model for fine-tuning on one endpoint."""

    base: str
    training_context: int
    methods: tuple[Method, ...]
    price_per_mtok: float | None
    """USD per 1M training tokens (Azure: the Global tier); None where unknown or billed
    otherwise (RFT: per hour)."""
    shutdown_date: dt.date | None
    """When the endpoint retires the base model and every model tuned from it (Azure: when
    fine-tuned deployments stop serving), if announced."""
    legacy_completion: bool = False
    """True for babbage-002/davinci-002, which train on prompt/completion pairs."""
    known: bool = True
    endpoint: EndpointKind = "openai"
    training_ends: dt.date | None = None
    """The first day on which the endpoint accepts no new jobs on this base, if announced."""
    approximate: bool = False
    """True when the dates are "no earlier than" / "about" rather than announced days."""
    tiers: tuple[Tier, ...] = ()
    """Azure training tiers offered for this base (empty elsewhere)."""
    tier_prices_per_mtok: Mapping[Tier, float] = dataclasses.field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    """USD per 1M training tokens per Azure tier."""
    price_per_training_hour: float | None = None
    """USD per training hour, for methods billed by time (RFT)."""
    hosting_per_hour: float | None = None
    """USD per hour while a fine-tuned model is deployed (Azure)."""
    checked: dt.date | None = None
    """When these facts were last checked against the endpoint's documentation."""


@dataclass(frozen=True)
class FactsTable:
    """The facts of one endpoint, with the date they were checked and where.

    Attributes:
        endpoint: the kind of endpoint the table describes.
        checked: when the table was last checked against ``sources``.
        sources: the documentation pages the facts come from.
        models: facts by base model name.
        job_creation_ends: the first day with no new jobs at all, if announced.
    """

    endpoint: EndpointKind
    checked: dt.date
    sources: tuple[str, ...]
    models: Mapping[str, ModelFacts]
    job_creation_ends: dt.date | None = None

    def with_models(self, *facts: ModelFacts, checked: dt.date | None = None) -> FactsTable:
        """A copy with ``facts`` added or replacing the entries of the same base."""
        models = dict(self.models)
        models.update((f.base, dataclasses.replace(f, endpoint=self.endpoint)) for f in facts)
        return dataclasses.replace(
            self, models=MappingProxyType(models), checked=checked or self.checked
        )


def _table(
    endpoint: EndpointKind,
    checked: dt.date,
    sources: Iterable[str],
    facts: Iterable[ModelFacts],
    job_creation_ends: dt.date | None = None,
) -> FactsTable:
    models = {f.base: dataclasses.replace(f, endpoint=endpoint, checked=checked) for f in facts}
    return FactsTable(
        endpoint, checked, tuple(sources), MappingProxyType(models), job_creation_ends
    )


# --- OpenAI (api.openai.com) ----------------------------------------------------------------
# Dates: developers.openai.com/api/docs/deprecations, checked 2026-12-02. The 2024-2025 chat
# snapshots and their fine-tunes shut down 2027-01-14; gpt-4.1-nano, o4-mini and gpt-3.5-turbo
# already did on 2026-10-23; self-serve fine-tuning accepts no new jobs from 2027-01-06.
# Prices: openai.com/api/pricing (fine-tuning), checked 2026-11-01.
_OPENAI_SHUTDOWN: Final = dt.date(2027, 1, 14)
_OPENAI_SHUTDOWN_2026: Final = dt.date(2026, 10, 23)

#: OpenAI stops accepting new fine-tuning jobs on this day (other endpoints continue).
JOB_CREATION_ENDS: Final = dt.date(2027, 1, 6)

#: When the OpenAI price table was last checked against the provider's pricing page.
PRICE_DATE: Final = dt.date(2026, 11, 1)

_SFT_DPO: Final[tuple[Method, ...]] = ("supervised", "dpo")

OPENAI_FACTS: Final = _table(
    "openai",
    PRICE_DATE,
    (
        "https://developers.openai.com/api/docs/deprecations",
        "https://openai.com/api/pricing/",
    ),
    (
        ModelFacts("gpt-4.1", 65_536, _SFT_DPO, 25.00, _OPENAI_SHUTDOWN),
        ModelFacts("gpt-4.1-mini", 65_536, _SFT_DPO, 5.00, _OPENAI_SHUTDOWN),
        ModelFacts("gpt-4.1-nano", 65_536, _SFT_DPO, 1.50, _OPENAI_SHUTDOWN_2026),
        ModelFacts("gpt-4o", 65_536, _SFT_DPO, 25.00, _OPENAI_SHUTDOWN),
        ModelFacts("gpt-4o-mini", 65_536, _SFT_DPO, 3.00, _OPENAI_SHUTDOWN),
        ModelFacts("gpt-3.5-turbo", 16_385, ("supervised",), 8.00, _OPENAI_SHUTDOWN_2026),
        ModelFacts(
            "o4-mini",
            65_536,
            ("reinforcement",),
            None,
            _OPENAI_SHUTDOWN_2026,
            price_per_training_hour=100.00,
        ),
        ModelFacts("davinci-002", 16_384, ("supervised",), 6.00, None, legacy_completion=True),
        ModelFacts("babbage-002", 16_384, ("supervised",), 0.40, None, legacy_completion=True),
    ),
    job_creation_ends=JOB_CREATION_ENDS,
)

# --- Azure OpenAI / Foundry ---------------------------------------------------------------
# Lifecycle: learn.microsoft.com/azure/ai-foundry/openai/concepts/model-retirements ("Fine-tuned
# models retire in two phases: training and deployment"), checked 2026-12-02. The gpt-4o /
# gpt-4.1 bases retire for training no earlier than 2027-04-14 (existing customers keep
# training until about then); fine-tuned deployments keep serving until about 2027-10-14. One
# public table gives o4-mini a different date; we keep the later, announced-for-training one
# and mark every Azure date approximate.
# Tiers and prices: learn.microsoft.com/azure/ai-foundry/openai/how-to/fine-tuning-cost-management
# and the Azure OpenAI pricing page: Global training is 10-30% below regional Standard and
# Developer 50% below Global. Global prices below match OpenAI's list prices; Standard is
# Global / 0.9 (the smallest stated discount, so the estimate is an upper bound). Hosting of a
# fine-tuned deployment: $1.70 per hour.
_AZURE_CHECKED: Final = dt.date(2026, 12, 2)
_AZURE_TRAINING_ENDS: Final = dt.date(2027, 4, 14)
_AZURE_SERVING_ENDS: Final = dt.date(2027, 10, 14)
_AZURE_HOSTING_PER_HOUR: Final = 1.70
_ALL_TIERS: Final[tuple[Tier, ...]] = ("standard", "global", "developer")
_GLOBAL_ONLY: Final[tuple[Tier, ...]] = ("global",)


def _azure(
    base: str,
    methods: tuple[Method, ...],
    global_price: float | None,
    *,
    tiers: tuple[Tier, ...] = _ALL_TIERS,
    retires: bool = True,
    per_hour: float | None = None,
) -> ModelFacts:
    prices: dict[Tier, float] = {}
    if global_price is not None:
        prices = {"standard": round(global_price / 0.9, 2), "global": global_price}
        prices["developer"] = round(global_price * 0.5, 2)
        prices = {tier: price for tier, price in prices.items() if tier in tiers}
    return ModelFacts(
        base,
        65_536,
        methods,
        global_price,
        _AZURE_SERVING_ENDS if retires else None,
        training_ends=_AZURE_TRAINING_ENDS if retires else None,
        approximate=retires,
        tiers=tiers,
        tier_prices_per_mtok=MappingProxyType(prices),
        price_per_training_hour=per_hour,
        hosting_per_hour=_AZURE_HOSTING_PER_HOUR,
    )


AZURE_FACTS: Final = _table(
    "azure",
    _AZURE_CHECKED,
    (
        "https://learn.microsoft.com/azure/ai-foundry/openai/concepts/model-retirements",
        "https://learn.microsoft.com/azure/ai-foundry/openai/how-to/fine-tuning-cost-management",
        "https://azure.microsoft.com/pricing/details/cognitive-services/openai-service/",
    ),
    (
        _azure("gpt-4o-mini", ("supervised",), 3.00),
        _azure("gpt-4o", _SFT_DPO, 25.00),
        _azure("gpt-4.1", _SFT_DPO, 25.00),
        _azure("gpt-4.1-mini", _SFT_DPO, 5.00),
        _azure("gpt-4.1-nano", _SFT_DPO, 1.50),
        _azure("o4-mini", ("reinforcement",), None, per_hour=100.00),
        # Open models: supervised, Global training only; no retirement announced.
        _azure("gpt-oss-20b", ("supervised",), None, tiers=_GLOBAL_ONLY, retires=False),
        _azure("qwen-32b", ("supervised",), None, tiers=_GLOBAL_ONLY, retires=False),
        _azure("llama-3.3-70b", ("supervised",), None, tiers=_GLOBAL_ONLY, retires=False),
        _azure("ministral-3b", ("supervised",), None, tiers=_GLOBAL_ONLY, retires=False),
    ),
)

# --- Any other OpenAI-compatible endpoint (including the local backend) -------------------
# Same context limits and methods as OpenAI's catalogue (servers imitate it), but no dates and
# no prices: nothing is known about when its models retire or what it charges.
OTHER_FACTS: Final = _table(
    "other",
    PRICE_DATE,
    (),
    (
        dataclasses.replace(
            f, price_per_mtok=None, shutdown_date=None, price_per_training_hour=None
        )
        for f in OPENAI_FACTS.models.values()
    ),
)

_TABLES: Final[Mapping[EndpointKind, FactsTable]] = MappingProxyType(
    {"openai": OPENAI_FACTS, "azure": AZURE_FACTS, "other": OTHER_FACTS}
)

#: USD per 1M training tokens on OpenAI, by base model (a view of :data:`OPENAI_FACTS`).
TRAINING_PRICES_PER_MTOK: Final[Mapping[str, float]] = MappingProxyType(
    {b: f.price_per_mtok for b, f in OPENAI_FACTS.models.items() if f.price_per_mtok is not None}
)


def facts_table(endpoint: EndpointKind) -> FactsTable:
    """The built-in facts table of ``endpoint`` (``"openai"``, ``"azure"`` or ``"other"``)."""
    return _TABLES[check_endpoint_kind(endpoint)]


def lifecycle_dates() -> frozenset[dt.date]:
    """Every lifecycle date in the built-in tables (CI moves the clock past all of them)."""
    days: set[dt.date] = set()
    for table in _TABLES.values():
        if table.job_creation_ends is not None:
            days.add(table.job_creation_ends)
        for facts in table.models.values():
            days.update(d for d in (facts.shutdown_date, facts.training_ends) if d is not None)
    return frozenset(days)


def model_facts(
    model: str,
    *,
    endpoint: EndpointKind = "openai",
    table: FactsTable | None = None,
    base_model: str | None = None,
) -> ModelFacts:
    """Facts for ``model``'s base on ``endpoint``; unknown models get permissive defaults.

    Args:
        model: a model name: base, snapshot, ``ft:`` name, checkpoint, Azure ``.ft-`` id.
        endpoint: whose facts: ``"openai"`` (default), ``"azure"`` or ``"other"``.
        table: the user's own table (see :meth:`FactsTable.with_models`) instead of the
            built-in one for ``endpoint``.
        base_model: the base when ``model`` is a name that says nothing (an Azure deployment
            name): read from the job when known, or given by the user.

    Returns:
        The facts; for an unknown base ``known=False``, all methods allowed, the default
        training context and no dates.
    """
    chosen = table if table is not None else facts_table(endpoint)
    base = base_model_name(base_model if base_model is not None else model)
    facts = chosen.models.get(base)
    if facts is not None:
        return facts
    return ModelFacts(
        base=base,
        training_context=DEFAULT_TRAINING_CONTEXT,
        methods=METHODS,
        price_per_mtok=None,
        shutdown_date=None,
        known=False,
        endpoint=chosen.endpoint,
        checked=chosen.checked,
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
