"""The SDK calls the job flows make, as :class:`~finetune_kit._core.client.Request` data.

Each works on a sync and an async client alike (the same resource methods); the flows yield
them and the drivers in ``_core/client.py`` perform them through the retry layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal

import openai

from .._core.client import Request

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from .._core.client import Effect, Flow

__all__ = [
    "PAGE",
    "Control",
    "action",
    "checkpoints_page",
    "create_job",
    "download",
    "events_page",
    "jobs_page",
    "retrieve",
    "single",
]

#: Items per page of every listing.
PAGE: Final = 100

Control = Literal["cancel", "pause", "resume"]


def retrieve(job_id: str) -> Request:
    return Request(
        f"retrieve fine-tuning job {job_id}", lambda c: c.fine_tuning.jobs.retrieve(job_id)
    )


def events_page(job_id: str, after: str | None) -> Request:
    return Request(
        f"list events of job {job_id}",
        lambda c: c.fine_tuning.jobs.list_events(job_id, limit=PAGE, after=after or openai.omit),
    )


def download(file_id: str) -> Request:
    return Request(f"download result file {file_id}", lambda c: c.files.content(file_id))


def checkpoints_page(job_id: str, after: str | None) -> Request:
    return Request(
        f"list checkpoints of job {job_id}",
        lambda c: c.fine_tuning.jobs.checkpoints.list(
            job_id, limit=PAGE, after=after or openai.omit
        ),
    )


def jobs_page(after: str | None, limit: int, metadata: Mapping[str, str] | None) -> Request:
    return Request(
        "list fine-tuning jobs",
        lambda c: c.fine_tuning.jobs.list(
            limit=limit,
            after=after or openai.omit,
            metadata=dict(metadata) if metadata else openai.omit,
        ),
    )


def create_job(params: dict[str, Any]) -> Request:
    return Request("create fine-tuning job", lambda c: c.fine_tuning.jobs.create(**params))


def action(name: Control, job_id: str) -> Request:
    def call(c: Any) -> object:
        jobs = c.fine_tuning.jobs
        method: Callable[[str], object] = {
            "cancel": jobs.cancel,
            "pause": jobs.pause,
            "resume": jobs.resume,
        }[name]
        return method(job_id)

    return Request(f"{name} fine-tuning job {job_id}", call)


def single(effect: Effect) -> Flow[Any]:
    """A flow of one effect (the shells' one-call operations; one step of a driven flow)."""
    result = yield effect
    return result
