"""The job operations as flows: generators that describe their requests without making them.

``Job`` runs them on a sync client and ``AsyncJob`` on an async one (see ``_core/client.py``),
so the two cannot drift apart. Everything here is pure but for the requests it yields: the
checks and warnings of a create (:func:`plan_create`), create with exactly-once semantics,
paging through events, checkpoints and jobs, metrics, and cancel / pause / resume.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any, Final

import openai

from .._core.client import once
from .._exceptions import DatasetError
from ..datasets._upload import upload_flow
from ..facts._formats import KINDS_FOR_METHOD
from ..facts._models import model_facts
from ._idempotency import IDEMPOTENCY_METADATA_KEY, call_key, find_job, idempotency_key
from ._lifecycle import _today, _unavailable, retirement_warning
from ._metrics import metrics_from_events, parse_metrics_csv, summarize_metrics
from ._models import Checkpoint, Event, merge_events
from ._options import TRAINING_TYPES
from ._raw import _n_epochs, _status
from ._requests import (
    PAGE,
    Control,
    action,
    checkpoints_page,
    create_job,
    download,
    events_page,
    jobs_page,
    retrieve,
)

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Mapping

    from openai.types.fine_tuning import FineTuningJob

    from .._core.client import Flow, Request
    from ..datasets._dataset import Dataset
    from ..facts._endpoints import EndpointKind
    from ..facts._models import Method
    from ._models import MetricsRow, MetricsSummary
    from ._options import JobOptions

__all__ = [
    "CreatePlan",
    "JobPages",
    "check_tier",
    "checkpoints_flow",
    "control_flow",
    "create_flow",
    "events_flow",
    "metrics_flow",
    "new_events",
    "plan_create",
    "summary_flow",
]

logger = logging.getLogger("finetune_kit")


# --- creating ----------------------------------------------------------------------------------


def _method_payload(
    method: Method,
    hyperparameters: Mapping[str, object] | None,
    grader: Mapping[str, object] | None,
) -> dict[str, object]:
    config: dict[str, object] = {}
    if hyperparameters:
        config["hyperparameters"] = dict(hyperparameters)
    if grader is not None:
        config["grader"] = dict(grader)
    return {"type": method, method: config}


def _check_kind(what: str, kind: str, method: Method, model: str) -> None:
    allowed = KINDS_FOR_METHOD[method]
    if kind not in allowed:
        raise DatasetError(
            f"the {what} data is {kind} data, but method={method!r} trains on "
            f"{' or '.join(sorted(allowed))} data"
        )
    facts = model_facts(model)
    if facts.known and kind == "completion" and not facts.legacy_completion:
        raise DatasetError(
            f"the {what} data is prompt/completion data, which only babbage-002 and davinci-002 "
            f"train on; {model} needs chat data"
        )
    if facts.legacy_completion and kind == "chat":
        raise DatasetError(f"{model} trains on prompt/completion data, not chat data")


def _overlap_warning(training: Dataset, validation: Dataset) -> str | None:
    """Why validation metrics would flatter the model, or None when the sets are disjoint."""
    from ..datasets._dataset import shared_examples

    shared = shared_examples(training, validation)
    if not shared:
        return None
    shown = ", ".join(f"validation {v} = training {t}" for v, t in shared[:3])
    more = f" and {len(shared) - 3} more" if len(shared) > 3 else ""
    return (
        f"{len(shared)} of {len(validation)} validation examples also appear in the training "
        f"data ({shown}{more}): validation loss and accuracy will look better than they are. "
        "Dataset.split() makes disjoint sets."
    )


class CreatePlan:
    """What a create decided before its first request: the data, options, key and warnings.

    Attributes:
        training: the training Dataset or file id.
        options: the checked options.
        warnings: what the caller should be warned about, in order (the shell emits them on
            the caller's thread, pointing at the caller's line).
        nonce: the random part of this call's idempotency key.
        endpoint: whose lifecycle facts apply (warnings, the refused-creation explanation).
    """

    def __init__(
        self,
        training: Dataset | str,
        options: JobOptions,
        warnings: list[str],
        nonce: str,
        endpoint: EndpointKind = "openai",
    ) -> None:
        self.training = training
        self.options = options
        self.warnings = warnings
        self.nonce = nonce
        self.endpoint = endpoint

    def key(self, training_file: str, validation_file: str | None) -> str:
        """The idempotency key this call's job carries."""
        o = self.options
        if o.idempotency_key is not None:
            return o.idempotency_key
        fingerprint = idempotency_key(
            training_file=training_file,
            validation_file=validation_file,
            model=o.model,
            method=o.method,
            hyperparameters=o.hyperparameters,
            grader=o.grader,
            suffix=o.suffix,
            seed=o.seed,
        )
        return call_key(fingerprint, self.nonce)

    def params(self, training_file: str, validation_file: str | None, key: str) -> dict[str, Any]:
        """The ``jobs.create`` arguments (the idempotency key goes into ``metadata``)."""
        o = self.options
        params: dict[str, Any] = {
            "model": o.model,
            "training_file": training_file,
            "method": _method_payload(o.method_name, o.hyperparameters, o.grader),
            "metadata": {**(o.metadata or {}), IDEMPOTENCY_METADATA_KEY: key},
        }
        optional = {
            "validation_file": validation_file,
            "suffix": o.suffix,
            "seed": o.seed,
            "integrations": [dict(i) for i in o.integrations] if o.integrations else None,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        tier = o.tier_name
        if tier is not None:
            # Azure-only: not a parameter of the SDK's create, so it travels as extra body.
            params["extra_body"] = {"trainingType": TRAINING_TYPES[tier]}
        return params


def plan_create(
    training: Dataset | str,
    options: JobOptions,
    *,
    today: dt.date | None = None,
    nonce: str | None = None,
    endpoint: EndpointKind = "openai",
) -> CreatePlan:
    """Check the data against the method and model, and gather the warnings (no requests).

    ``today`` defaults to the lifecycle's "today"; ``nonce`` (the per-call part of the
    idempotency key) to a fresh random one; ``endpoint`` says whose dates and methods apply
    (the local backend and other servers: none of OpenAI's).

    Raises:
        DatasetError: the data does not fit the method or model.
        ValueError: a training tier on an endpoint other than Azure, or one the model does
            not offer there.
    """
    method, model = options.method_name, options.model
    check_tier(options, endpoint)
    for what, data in (("training", training), ("validation", options.validation)):
        if data is not None and not isinstance(data, str):
            _check_kind(what, data.kind, method, model)
    warnings: list[str] = []
    facts = model_facts(model, endpoint=endpoint)
    if facts.known and method not in facts.methods:
        warnings.append(
            f"{facts.base} is not known to support {method} fine-tuning (known: "
            f"{', '.join(facts.methods)}); the service will say if it does not"
        )
    retiring = retirement_warning(model, today or _today(), endpoint=endpoint)
    if retiring:
        warnings.append(retiring)
    validation = options.validation
    if not isinstance(training, str) and validation is not None and not isinstance(validation, str):
        overlap = _overlap_warning(training, validation)
        if overlap:
            warnings.append(overlap)
    return CreatePlan(training, options, warnings, nonce or secrets.token_hex(12), endpoint)


def check_tier(options: JobOptions, endpoint: EndpointKind) -> None:
    """A tier only on Azure, and only one the model offers there (unknown models: any)."""
    tier = options.tier_name
    if tier is None:
        return
    if endpoint != "azure":
        raise ValueError(
            f"tier={tier!r} is an Azure OpenAI option (trainingType), but this client's "
            f"endpoint is {endpoint!r}: use an openai.AzureOpenAI client (or a session with "
            "endpoint='azure'), or leave tier out"
        )
    facts = model_facts(options.model, endpoint="azure")
    if facts.known and tier not in facts.tiers:
        offered = ", ".join(facts.tiers) or "none"
        checked = f"; facts checked {facts.checked.isoformat()}" if facts.checked else ""
        raise ValueError(
            f"{options.model} does not offer the {tier!r} training tier on Azure OpenAI "
            f"(its tiers: {offered}{checked})"
        )


def create_flow(plan: CreatePlan) -> Flow[FineTuningJob]:
    """Upload what needs uploading, then create the job exactly once."""
    options = plan.options
    training = plan.training
    if isinstance(training, str):
        training_file = training
    else:
        training_file = yield from upload_flow(training, model=options.model)
    validation = options.validation
    if validation is None or isinstance(validation, str):
        validation_file = validation
    else:
        validation_file = yield from upload_flow(validation, model=options.model, role="validation")
    key = plan.key(training_file, validation_file)
    if options.idempotency_key is not None:
        existing = yield from find_job(key)
        if existing is not None:
            logger.info("job %s already carries idempotency key %s; reusing it", existing.id, key)
            return existing
    params = plan.params(training_file, validation_file, key)
    try:
        job: FineTuningJob = yield once(
            "create fine-tuning job", create_job(params), lambda: find_job(key)
        )
    except openai.APIStatusError as exc:
        unavailable = _unavailable(exc, endpoint=plan.endpoint)
        if unavailable is not None:
            raise unavailable from exc
        raise
    logger.info("created fine-tuning job %s (%s on %s)", job.id, options.method, options.model)
    return job


# --- listing and reading -----------------------------------------------------------------------


class JobPages:
    """How ``Job.list`` pages, as a pure state machine the shells drive one page at a time.

    ``next_request()`` says which page to fetch (None: done); ``take(page)`` returns that
    page's jobs to hand out. Nothing is fetched before the caller asks for the next job, so a
    caller that stops iterating stops the requests.
    """

    def __init__(self, limit: int | None, metadata: Mapping[str, str] | None) -> None:
        self._left = limit
        self._metadata = metadata
        self._after: str | None = None
        self._done = False

    def next_request(self) -> Request | None:
        if self._done or self._left == 0:
            return None
        size = PAGE if self._left is None else min(PAGE, self._left)
        return jobs_page(self._after, size, self._metadata)

    def take(self, page: Any) -> list[FineTuningJob]:
        data: list[FineTuningJob] = list(page.data or [])
        if self._left is not None:
            data = data[: self._left]
            self._left -= len(data)
        if not data or page.has_more is False:
            self._done = True
        else:
            self._after = data[-1].id
        return data


def _pages(first: Callable[[str | None], Request], stop_at: str | None = None) -> Flow[list[Any]]:
    """Every item of a newest-first cursor listing, up to (not including) ``stop_at``."""
    items: list[Any] = []
    after: str | None = None
    while True:
        page = yield first(after)
        data: list[Any] = list(page.data or [])
        for item in data:
            if item.id == stop_at:
                return items
            items.append(item)
        if not data or page.has_more is False:
            return items
        after = data[-1].id


def new_events(job_id: str, stop_at: str | None) -> Flow[list[Event]]:
    """The job's events newer than ``stop_at`` (all when None), newest first."""
    raw = yield from _pages(lambda after: events_page(job_id, after), stop_at)
    return [Event.from_sdk(e) for e in raw]


def events_flow(job_id: str) -> Flow[list[Event]]:
    """All of a job's events, in time order, without duplicates."""
    newest_first = yield from new_events(job_id, None)
    return merge_events([], newest_first)


def checkpoints_flow(job_id: str) -> Flow[list[Checkpoint]]:
    """A job's checkpoints, by step."""
    raw = yield from _pages(lambda after: checkpoints_page(job_id, after))
    return sorted((Checkpoint.from_sdk(c) for c in raw), key=lambda c: c.step)


def metrics_flow(job_id: str) -> Flow[list[MetricsRow]]:
    """Metrics from the result file when there is one, else from the metrics events."""
    raw: FineTuningJob = yield retrieve(job_id)
    return (yield from _metrics_of(raw))


def _metrics_of(raw: FineTuningJob) -> Flow[list[MetricsRow]]:
    for file_id in raw.result_files or []:
        content = yield download(file_id)
        try:
            return parse_metrics_csv(content.content)
        except ValueError as exc:
            logger.warning("result file %s of job %s: %s; using events", file_id, raw.id, exc)
    events = yield from events_flow(raw.id)
    return metrics_from_events(events)


def summary_flow(job_id: str) -> Flow[MetricsSummary]:
    """The metrics summary (see :func:`summarize_metrics`)."""
    raw: FineTuningJob = yield retrieve(job_id)
    rows = yield from _metrics_of(raw)
    checkpoints = yield from checkpoints_flow(job_id)
    return summarize_metrics(rows, checkpoints, n_epochs=_n_epochs(raw))


# --- controlling -------------------------------------------------------------------------------

#: The statuses that show a control request already took effect.
_DONE_WHEN: Final[dict[str, frozenset[str]]] = {
    "cancel": frozenset({"cancelled"}),
    "pause": frozenset({"paused"}),
    "resume": frozenset({"validating_files", "queued", "running"}),
}


def control_flow(name: Control, job_id: str) -> Flow[FineTuningJob]:
    """Cancel, pause or resume; a retry after an ambiguous failure checks before re-sending.

    Sent twice, a control request fails the second time (the job is already cancelled, say),
    so after a lost reply the job's status says whether the first one took effect.
    """

    def already() -> Flow[FineTuningJob | None]:
        job: FineTuningJob = yield retrieve(job_id)
        return job if _status(job) in _DONE_WHEN[name] else None

    result: FineTuningJob = yield once(
        f"{name} fine-tuning job {job_id}", action(name, job_id), already
    )
    return result
