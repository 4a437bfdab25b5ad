"""Exactly-once job creation: the key each create carries, and the look-up after a lost reply.

The SDK sends no idempotency key, so a ``POST /fine_tuning/jobs`` whose reply is lost (timeout,
dropped connection, 5xx) may or may not have created the job. Every create therefore carries a
key in its metadata (:data:`IDEMPOTENCY_METADATA_KEY`), and a retry after an ambiguous failure
first looks for a job carrying that key.

The key is unique to the call: the request's fingerprint (:func:`idempotency_key`, the same for
the same request) plus a random part drawn once per call. So the look-up matches on the key
alone and never on timestamps: an identical job started deliberately earlier carries another
key, and whether the service's clock agrees with ours does not matter. A caller-chosen key
(``idempotency_key=``) is used as it is, to make one job across runs.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Final

import openai

from ._options import IDEMPOTENCY_METADATA_KEY
from ._requests import PAGE, jobs_page

if TYPE_CHECKING:
    from collections.abc import Mapping

    from openai.types.fine_tuning import FineTuningJob

    from .._core.client import Flow

__all__ = [
    "IDEMPOTENCY_METADATA_KEY",
    "LOOKUP_PAGES",
    "call_key",
    "find_job",
    "idempotency_key",
]

#: Most pages of jobs one look-up reads (filtered, or the newest jobs when a server rejects or
#: ignores the metadata filter): a lost reply's job is among the newest, and a look-up must
#: never walk an account's whole history.
LOOKUP_PAGES: Final = 3


def idempotency_key(
    *,
    training_file: str,
    validation_file: str | None,
    model: str,
    method: str,
    hyperparameters: Mapping[str, object] | None,
    grader: Mapping[str, object] | None = None,
    suffix: str | None,
    seed: int | None,
) -> str:
    """The request's fingerprint: the same for the same job request, different for any other."""
    canonical = json.dumps(
        {
            "training_file": training_file,
            "validation_file": validation_file,
            "model": model,
            "method": method,
            "hyperparameters": dict(hyperparameters or {}),
            "grader": dict(grader or {}),
            "suffix": suffix,
            "seed": seed,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return "ftk1-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def call_key(fingerprint: str, nonce: str) -> str:
    """The key one create call carries: its request's fingerprint and the call's random part."""
    return f"{fingerprint}-{nonce}"


def find_job(key: str) -> Flow[FineTuningJob | None]:
    """The newest job carrying idempotency ``key``, reading at most :data:`LOOKUP_PAGES` pages.

    Some compatible servers reject the metadata filter (then the newest jobs are read) or
    ignore it (then what they return is filtered here): either way the match is on the key.
    """
    wanted: dict[str, str] | None = {IDEMPOTENCY_METADATA_KEY: key}
    after: str | None = None
    for _ in range(LOOKUP_PAGES):
        try:
            page = yield jobs_page(after, PAGE, wanted)
        except openai.BadRequestError:
            if wanted is None:
                raise
            wanted = None  # the server rejects the filter: read the newest jobs instead
            page = yield jobs_page(after, PAGE, None)
        data: list[FineTuningJob] = list(page.data or [])
        for job in data:
            tags = getattr(job, "metadata", None) or {}
            if tags.get(IDEMPOTENCY_METADATA_KEY) == key:
                return job
        if not data or page.has_more is False:
            return None
        after = data[-1].id
    return None
