"""Lifecycle of the service as the jobs code meets it: "today", retiring bases, refused creation.

"Today" is read here and nowhere else in the jobs code, so that tests about dates can set it.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import openai

from .._exceptions import FineTuningUnavailableError
from ..facts._models import JOB_CREATION_ENDS, model_facts

__all__ = ["retirement_warning"]

#: Error codes with which the service says fine-tuning is not offered to this caller.
_UNAVAILABLE_CODES: Final = frozenset(
    {"fine_tuning_not_available", "fine_tuning_unavailable", "fine_tuning_disabled"}
)
_RETIREMENT_HORIZON_DAYS: Final = 90


def retirement_warning(model: str, today: dt.date) -> str | None:
    """Why training ``model`` on ``today`` is a bad idea, when its base retires soon or did."""
    facts = model_facts(model)
    when = facts.shutdown_date
    if when is None:
        return None
    if when <= today:
        return (
            f"{facts.base} was retired on {when.isoformat()}: a model tuned from it cannot be "
            "used; pick a current base model"
        )
    days = (when - today).days
    if days <= _RETIREMENT_HORIZON_DAYS:
        return (
            f"{facts.base} retires on {when.isoformat()} (in {days} days): a model tuned from "
            "it stops answering then"
        )
    return None


def _today() -> dt.date:
    # A function, so that tests can move "today" (monkeypatch) to check retirement warnings.
    return dt.date.today()


def _unavailable(exc: openai.APIStatusError) -> FineTuningUnavailableError | None:
    if not (
        isinstance(exc, openai.PermissionDeniedError) or (exc.code or "") in _UNAVAILABLE_CODES
    ):
        return None
    said = f" ({exc.code})" if exc.code else ""
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
