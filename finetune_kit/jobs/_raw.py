"""Reading the SDK's ``FineTuningJob`` defensively, and the properties both shells show.

What the SDK's types get wrong and this module tolerates: the ``paused`` status (not in the
``status`` literal), ``hyperparameters`` null for DPO/RFT jobs, and an ``error`` whose fields
are all null on a healthy job. The SDK builds response objects without validating them, so
these arrive as they are; the accessors below read them defensively.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

from .._exceptions import JobCancelledError, JobError, JobFailedError

if TYPE_CHECKING:
    from openai.types.fine_tuning import FineTuningJob
    from openai.types.fine_tuning.fine_tuning_job import Error as SdkJobError

    from .._core.client import Flow
    from ._spec import JobSpec

__all__ = ["TERMINAL_STATUSES", "JobView"]

#: Statuses after which a job never changes again.
TERMINAL_STATUSES: Final = frozenset({"succeeded", "failed", "cancelled"})


def _status(raw: FineTuningJob) -> str:
    # A plain str: the service also says "paused", which the SDK's literal lacks.
    return str(raw.status)


def _error(raw: FineTuningJob) -> SdkJobError | None:
    error = raw.error
    if error is None:
        return None
    if not any(getattr(error, name, None) for name in ("code", "message", "param")):
        return None  # healthy jobs can carry an error whose fields are all null
    return error


def _hyperparameters(raw: FineTuningJob) -> dict[str, object]:
    values: dict[str, object] = {}
    top = cast("Any", raw).hyperparameters  # null for DPO/RFT despite the SDK's type
    if top is not None:
        values.update({k: v for k, v in top.model_dump().items() if v is not None})
    method = getattr(raw, "method", None)
    config = getattr(method, str(getattr(method, "type", "")), None) if method else None
    nested = getattr(config, "hyperparameters", None)
    if nested is not None:
        values.update({k: v for k, v in nested.model_dump().items() if v is not None})
    return values


def _method(raw: FineTuningJob) -> str:
    method = getattr(raw, "method", None)
    return str(getattr(method, "type", None) or "supervised")


def _n_epochs(raw: FineTuningJob) -> int | None:
    value = _hyperparameters(raw).get("n_epochs")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _outcome_error(raw: FineTuningJob) -> JobError | None:
    """The exception a finished-but-unsuccessful job turns into (None if it succeeded)."""
    status = _status(raw)
    if status == "failed":
        error = _error(raw)
        code = getattr(error, "code", None) or None
        message = getattr(error, "message", None) or None
        param = getattr(error, "param", None) or None
        detail = f": {code}: {message}" if code or message else " (no reason given)"
        where = f" (param {param})" if param else ""
        return JobFailedError(
            f"fine-tuning job {raw.id} failed{detail}{where}",
            job_id=raw.id,
            code=code,
            service_message=message,
            param=param,
        )
    if status == "cancelled":
        return JobCancelledError(f"fine-tuning job {raw.id} was cancelled", job_id=raw.id)
    if status == "succeeded" and not raw.fine_tuned_model:
        return JobError(f"job {raw.id} succeeded but names no fine-tuned model", job_id=raw.id)
    return None


class JobView:
    """What Job and AsyncJob both show about the job as last fetched (no I/O here)."""

    _raw: FineTuningJob

    def _spec_flow(self, tier: str | None) -> Flow[JobSpec]:
        """The flow that reads this job's recipe (its files' names give the data hashes)."""
        from ._spec import spec_flow

        return spec_flow(
            self._raw, method=self.method, hyperparameters=self.hyperparameters, tier=tier
        )

    @property
    def raw(self) -> FineTuningJob:
        """The SDK's object as last fetched."""
        return self._raw

    @property
    def id(self) -> str:
        """The job id (``ftjob-...``)."""
        return self._raw.id

    @property
    def status(self) -> str:
        """``validating_files``, ``queued``, ``running``, ``paused``, ``succeeded``,
        ``failed`` or ``cancelled`` (as last fetched; see :meth:`refresh`)."""
        return _status(self._raw)

    @property
    def model(self) -> str:
        """The base model being tuned."""
        return self._raw.model

    @property
    def fine_tuned_model(self) -> str | None:
        """The resulting model's name, once the job succeeded."""
        return self._raw.fine_tuned_model

    @property
    def trained_tokens(self) -> int | None:
        """Billable tokens processed, once the job finished."""
        return self._raw.trained_tokens

    @property
    def error(self) -> SdkJobError | None:
        """Why the job failed (code, message, param), or None."""
        return _error(self._raw)

    @property
    def method(self) -> str:
        """``supervised``, ``dpo`` or ``reinforcement``."""
        return _method(self._raw)

    @property
    def hyperparameters(self) -> dict[str, object]:
        """The hyperparameters in effect, wherever the service reports them."""
        return _hyperparameters(self._raw)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r}, status={self.status!r}, model={self.model!r})"
