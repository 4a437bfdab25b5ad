"""Lifecycle of the service as the jobs code meets it: "today", retiring bases, refused creation.

"Today" is the UTC date of the session's clock (``_core/clock.py``), read here and nowhere
else in the jobs code, so that tests about dates set it (``Session(clock=...)``) and nothing
changes behaviour when the calendar passes a date in the catalogue. Retirement dates belong to
an endpoint: OpenAI's apply to OpenAI, Azure's to Azure, and an unknown OpenAI-compatible
server (the local backend included) gets no retirement warnings at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import openai

from .._core.clock import SYSTEM_CLOCK, utc_today
from .._core.session import default_session
from .._exceptions import FineTuningUnavailableError
from ..facts._models import JOB_CREATION_ENDS, model_facts

if TYPE_CHECKING:
    import datetime as dt

    from .._core.clock import Clock
    from ..facts._endpoints import EndpointKind
    from ..facts._models import FactsTable

__all__ = ["retirement_warning"]

#: Error codes with which the service says fine-tuning is not offered to this caller.
_UNAVAILABLE_CODES: Final = frozenset(
    {"fine_tuning_not_available", "fine_tuning_unavailable", "fine_tuning_disabled"}
)
_RETIREMENT_HORIZON_DAYS: Final = 90


def retirement_warning(
    model: str,
    today: dt.date,
    *,
    endpoint: EndpointKind = "openai",
    table: FactsTable | None = None,
    base_model: str | None = None,
) -> str | None:
    """Why training ``model`` on ``endpoint`` on ``today`` is a bad idea, or None.

    Args:
        model: the model to train (any name :func:`~finetune_kit.facts._models.model_facts`
            understands).
        today: the date to judge by (see :func:`_today`).
        endpoint: whose dates apply; ``"other"`` (an unknown server, the local backend) never
            warns, because its models do not retire with OpenAI's or Azure's.
        table: the user's own facts table instead of the endpoint's built-in one.
        base_model: the base of a name that says nothing (an Azure deployment name).
    """
    facts = model_facts(model, endpoint=endpoint, table=table, base_model=base_model)
    about = "about " if facts.approximate else ""
    where = {"openai": "OpenAI", "azure": "Azure", "other": "this endpoint"}[facts.endpoint]
    ends = facts.training_ends
    when = facts.shutdown_date
    if when is not None and when <= today:
        return (
            f"{facts.base} was retired on {about}{when.isoformat()} ({where}): a model tuned "
            "from it cannot be used; pick a current base model"
        )
    if ends is not None and ends <= today:
        serving = f"; tuned models serve until {about}{when.isoformat()}" if when else ""
        return (
            f"{facts.base} accepts no new fine-tuning jobs since {about}{ends.isoformat()} "
            f"({where}){serving}; pick a current base model"
        )
    for kind, day in (("training ends", ends), ("retires", when)):
        if day is None:
            continue
        days = (day - today).days
        if days <= _RETIREMENT_HORIZON_DAYS:
            return (
                f"{facts.base} {kind} on {about}{day.isoformat()} (in {days} days) on {where}: "
                + (
                    "a model tuned from it stops answering then"
                    if kind == "retires"
                    else "new jobs on it are refused from then"
                )
            )
    return None


def _today(*, clock: Clock | None = None) -> dt.date:
    """Today in UTC, on ``clock`` (default: the default session's clock)."""
    return utc_today(clock or default_session().clock or SYSTEM_CLOCK)


def _unavailable(
    exc: openai.APIStatusError, *, endpoint: EndpointKind = "openai"
) -> FineTuningUnavailableError | None:
    """The error that explains a refused job creation, or None when ``exc`` is no refusal.

    On OpenAI the explanation is the wind-down of self-serve fine-tuning; elsewhere the
    endpoint's own permissions.
    """
    if not (
        isinstance(exc, openai.PermissionDeniedError) or (exc.code or "") in _UNAVAILABLE_CODES
    ):
        return None
    said = f" ({exc.code})" if exc.code else ""
    if endpoint != "openai":
        return FineTuningUnavailableError(
            f"the service refused to create the fine-tuning job: HTTP {exc.status_code}{said}: "
            f"{exc.message}\nCheck that this endpoint offers fine-tuning for the model in your "
            "region and tier, and the credentials' role (on Azure: a role that may create "
            "fine-tuning jobs on the resource)."
        )
    return FineTuningUnavailableError(
        f"the service refused to create the fine-tuning job: HTTP {exc.status_code}{said}: "
        f"{exc.message}\n"
        "OpenAI is winding down self-serve fine-tuning: since 2026-05-07 organisations that "
        "never fine-tuned cannot create jobs, since 2026-07-02 neither can those without "
        "fine-tuned-model inference in the last 60 days, and from "
        f"{JOB_CREATION_ENDS.isoformat()} nobody can. Existing fine-tuned models keep "
        "answering until their base model retires.\n"
        "To keep training, pass a client for an endpoint that still fine-tunes: Azure OpenAI "
        "(openai.AzureOpenAI), another OpenAI-compatible service (openai.OpenAI(base_url=...)), "
        "or finetune_kit's local backend for trying a pipeline without cost (`finetune-kit "
        "serve`, then base_url='http://127.0.0.1:8765/v1'). If this is a permissions problem "
        "instead, check the API key's project and role."
    )
