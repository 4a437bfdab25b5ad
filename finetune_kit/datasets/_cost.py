"""What training on a dataset costs: epochs, billable tokens and the dated price table."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final, Literal

from ..facts._models import PRICE_DATE, default_n_epochs, model_facts
from ._reports import CostEstimate

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._reports import DatasetStats

__all__ = ["estimate"]

_RFT_NOTE: Final = (
    "reinforcement fine-tuning is billed per hour of training ($100/h on o4-mini), not per token"
)


def estimate(
    stats: DatasetStats,
    model: str,
    *,
    n_epochs: int | None,
    prices: Mapping[str, float] | None,
) -> CostEstimate:
    """An upper bound on the cost of training ``model`` on data with ``stats``.

    Args:
        stats: the dataset's statistics in ``model``'s encoding.
        model: the model to fine-tune (base, snapshot or ``ft:`` name).
        n_epochs: epochs (checked by the caller); None applies the service's default rule.
        prices: USD per 1M training tokens by model name, overriding the dated table.
    """
    facts = model_facts(model)
    epochs = n_epochs if n_epochs is not None else default_n_epochs(stats.n_examples)
    trained = stats.billable_tokens * epochs
    override = _lookup_price(prices, model, facts.base)
    price = override if override is not None else facts.price_per_mtok
    source: Literal["catalog", "override", "unknown"] = (
        "override" if override is not None else "catalog" if price else "unknown"
    )
    note = None
    if stats.kind == "reinforcement" and override is None:
        price, source, note = None, "unknown", _RFT_NOTE
    elif price is None:
        note = f"no price known for {facts.base}: pass prices={{{facts.base!r}: USD per 1M}}"
    # Rounded up to the cent: an estimate that must never be below the bill.
    usd = math.ceil(trained * price / 1e4) / 100 if price is not None else None
    return CostEstimate(
        model=model,
        base_model=facts.base,
        n_examples=stats.n_examples,
        n_epochs=epochs,
        n_epochs_source="given" if n_epochs is not None else "default",
        billable_tokens=stats.billable_tokens,
        trained_tokens=trained,
        price_per_mtok=price,
        usd=usd,
        price_date=PRICE_DATE,
        price_source=source,
        note=note,
    )


def _lookup_price(prices: Mapping[str, float] | None, model: str, base: str) -> float | None:
    if not prices:
        return None
    for name in (model, model.lower(), base):
        if name in prices:
            return float(prices[name])
    return None
