"""What a deployment costs while it exists, and when Azure may delete it for idleness.

Pure logic over the facts tables and ARM's documents: no requests, no clock of its own (the
caller passes "now").

Hosting: Azure bills a fine-tuned deployment per hour from creation to deletion, called or
not (``hosting_per_hour`` in :mod:`finetune_kit.facts._models`, dated like every price).

Idleness: Azure deletes a fine-tuned deployment that received no calls for 15 days (the
model stays and can be deployed again). ARM does not say when a deployment was last called,
so nothing here can know how close a deployment is to deletion. What can be said honestly:
the idle clock cannot have started before the deployment was last created or changed
(``systemData.lastModifiedAt``), and a caller who knows when it last used the deployment can
say so. From the later of the two, the deletion is *possible* 15 days on, and we warn from
day 13.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from .._core.session import facts_for

if TYPE_CHECKING:
    import openai

    from .._core.session import Session
    from ..facts._endpoints import EndpointKind
    from ..facts._models import FactsTable
    from ._deployments import Deployment

__all__ = [
    "IDLE_DELETION_DAYS",
    "IDLE_WARNING_DAYS",
    "HostingCost",
    "estimate_hosting_cost",
    "idle_deadline",
    "idle_warning",
]

#: Azure deletes a fine-tuned deployment after this many days without calls.
IDLE_DELETION_DAYS: Final = 15
#: From this many idle days on, a deployment is reported as near its deletion.
IDLE_WARNING_DAYS: Final = 13
#: Developer-tier deployments carry no hourly hosting charge (per-token billing only) and are
#: deleted after a fixed 24 hours. ARM's SKU name is ``DeveloperTier``; "Developer" is
#: accepted too, as the portal calls it.
DEVELOPER_SKUS: Final = frozenset({"developertier", "developer"})
#: Hours in an average month (365 * 24 / 12), the convention of Azure's pricing calculator.
HOURS_PER_MONTH: Final = 730


@dataclass(frozen=True)
class HostingCost:
    """What keeping a fine-tuned model deployed costs, from a dated price table.

    Attributes:
        model: the model the estimate is for.
        per_hour: USD per hour while deployed (0 on the Developer tier).
        price_date: when the price was last checked against the provider's pricing page.
        sku: the deployment type the estimate is for.
    """

    model: str
    per_hour: float
    price_date: dt.date
    sku: str = "Standard"

    @property
    def per_day(self) -> float:
        """USD per day while deployed."""
        return self.per_hour * 24

    @property
    def per_month(self) -> float:
        """USD per average month (730 hours) while deployed."""
        return self.per_hour * HOURS_PER_MONTH

    def __str__(self) -> str:
        if self.sku.lower() in DEVELOPER_SKUS:
            return (
                f"hosting {self.model} on the Developer tier: no hourly charge, billed per token "
                "only; no SLA, and Azure deletes the deployment after 24 hours"
            )
        return (
            f"hosting {self.model}: ${self.per_hour:,.2f}/hour, ${self.per_day:,.2f}/day, "
            f"about ${self.per_month:,.2f}/month while deployed, called or not (prices checked "
            f"{self.price_date.isoformat()}); Azure deletes a deployment left without calls "
            f"for {IDLE_DELETION_DAYS} days (the model stays)"
        )


def estimate_hosting_cost(
    model: str,
    *,
    sku: str = "Standard",
    where: openai.OpenAI | openai.AsyncOpenAI | Session | EndpointKind | None = "azure",
    base_model: str | None = None,
    table: FactsTable | None = None,
) -> HostingCost | None:
    """The hourly, daily and monthly cost of keeping ``model`` deployed.

    Args:
        model: the fine-tuned model id (or its base).
        sku: the deployment type; ``DeveloperTier`` has no hourly charge.
        where: whose prices: a client, a session or an endpoint kind; Azure by default, the
            endpoint that bills hosting.
        base_model: the base when ``model`` says nothing (a deployment name).
        table: your own facts table (see :meth:`~finetune_kit.facts.FactsTable.with_models`).

    Returns:
        The estimate, or None when the endpoint's facts give no hosting price for the model.
    """
    facts = facts_for(where, model, base_model=base_model, table=table)
    if facts.hosting_per_hour is None or facts.checked is None:
        return None
    per_hour = 0.0 if sku.lower() in DEVELOPER_SKUS else facts.hosting_per_hour
    return HostingCost(model, per_hour, facts.checked, sku)


def idle_deadline(
    deployment: Deployment, *, last_used: dt.datetime | None = None
) -> dt.datetime | None:
    """The earliest moment Azure may delete ``deployment`` for idleness.

    Args:
        deployment: the deployment, as ARM described it.
        last_used: when you last called it, if you know; ARM does not tell.

    Returns:
        15 days after the later of its last change and ``last_used``; None when neither is
        known.
    """
    known = [d for d in (deployment.modified_at, deployment.created_at, last_used) if d]
    if not known:
        return None
    return max(_utc(d) for d in known) + dt.timedelta(days=IDLE_DELETION_DAYS)


def idle_warning(
    deployment: Deployment, *, now: dt.datetime, last_used: dt.datetime | None = None
) -> str | None:
    """A warning when ``deployment`` may be deleted for idleness within two days, else None.

    Args:
        deployment: the deployment, as ARM described it.
        now: the current time (timezone-aware; naive means UTC).
        last_used: when you last called it, if you know.
    """
    deadline = idle_deadline(deployment, last_used=last_used)
    if deadline is None:
        return None
    early = deadline - dt.timedelta(days=IDLE_DELETION_DAYS - IDLE_WARNING_DAYS)
    if _utc(now) < early:
        return None
    since = (deadline - dt.timedelta(days=IDLE_DELETION_DAYS)).date().isoformat()
    when = "any time now" if _utc(now) >= deadline else f"from {deadline:%Y-%m-%d %H:%M} UTC"
    return (
        f"deployment {deployment.name!r}: if it has not been called since {since}, Azure may "
        f"delete it {when} ({IDLE_DELETION_DAYS} days without calls; ARM does not report "
        "calls, so this is the earliest possible date). Call it to keep it, or undeploy it; "
        "the model stays either way."
    )


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment
