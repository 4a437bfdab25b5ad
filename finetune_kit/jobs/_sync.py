"""``Job``: the fine-tuning job shell over a sync client (the logic is in the flows)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

import openai

from .._core.client import resolve_client, run_flow
from ._flows import (
    checkpoints_flow,
    control_flow,
    create_flow,
    events_flow,
    metrics_flow,
    plan_create,
    summary_flow,
)
from ._options import JobOptions, warn_all
from ._requests import retrieve, single
from ._shell import JobShell

if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable, Iterator, Mapping

    from typing_extensions import Unpack

    from .._core.client import Flow
    from .._core.retry import RetryPolicy
    from ..datasets._dataset import Dataset
    from ..models._tuned_model import TunedModel
    from ._flows import JobPages
    from ._models import Checkpoint, Event, MetricsRow, MetricsSummary
    from ._options import JobKwargs
    from ._spec import JobSpec

__all__ = ["Job"]


class Job(JobShell[openai.OpenAI]):
    """A fine-tuning job on the service, through a sync client.

    Get one from :meth:`create`, :meth:`get` or :meth:`list`. The job remembers the client and
    retry policy it was obtained with and uses them for everything it does.

    Args:
        raw: the SDK's job object.
        client: the client to use; omitted, the default one.
        retry: the retry policy; omitted, the default one.
    """

    _SYNC: ClassVar[bool] = True
    _resolve = staticmethod(resolve_client)

    def _run(self, flow: Flow[Any]) -> Any:
        return run_flow(flow, self._client, self._retry)

    @classmethod
    def create(
        cls,
        training: Dataset | str,
        *,
        model: str,
        client: openai.OpenAI | None = None,
        retry: RetryPolicy | None = None,
        **options: Unpack[JobKwargs],
    ) -> Job:
        """Start a fine-tuning job; a retried request never creates a second one.

        This builds a :class:`JobOptions` from ``model`` and ``options`` and calls
        :meth:`create_from`.

        Args:
            training: a Dataset (validated and uploaded, or an identical upload reused) or the
                id of an uploaded file (``file-...``; a path is refused: load it as a Dataset).
            model: the base model (or a fine-tuned one to continue from).
            client: the client to use; omitted, the default one.
            retry: the retry policy; omitted, the default one.
            **options: ``validation``, ``method``, ``hyperparameters``, ``grader``,
                ``suffix``, ``seed``, ``metadata``, ``integrations``, ``idempotency_key`` and
                ``tier``, each described at :class:`JobOptions`.

        Raises:
            TypeError: an argument has the wrong type, or is none of these (before any
                request).
            ValueError: an argument has a wrong value, or arguments contradict each other
                (including a tier off Azure or one the model does not offer).
            DatasetError: the data does not fit the method or model (before any request).
            DatasetValidationError: a Dataset has validation errors.
            FineTuningUnavailableError: the service refuses to create jobs for this caller.
        """
        checked = JobOptions.from_kwargs("Job.create()", model, options)
        return cls._start(training, checked, client, retry)

    @classmethod
    def create_from(
        cls,
        training: Dataset | str,
        options: JobOptions,
        *,
        client: openai.OpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> Job:
        """:meth:`create` with the options in one :class:`JobOptions` (reusable, checked once)."""
        return cls._start(training, options, client, retry)

    def spec(self, *, tier: str | None = None) -> JobSpec:
        """This job's recipe, to re-run it elsewhere with :meth:`create_from_spec`."""
        return cast("JobSpec", self._run(self._spec_flow(tier)))

    @classmethod
    def create_from_spec(
        cls,
        spec: JobSpec,
        training: Dataset,
        *,
        validation: Dataset | None = None,
        idempotency_key: str | None = None,
        client: openai.OpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> Job:
        """Create, on ``client``'s endpoint, the job ``spec`` describes, from the same data.

        Raises:
            ValueError: the data is not the data the spec's job trained on.
        """
        options = spec.options(training, validation=validation, idempotency_key=idempotency_key)
        return cls._start(training, options, client, retry)

    @classmethod
    def _start(
        cls,
        training: Dataset | str,
        options: JobOptions,
        client: openai.OpenAI | None,
        retry: RetryPolicy | None,
    ) -> Job:
        resolved, endpoint = cls._for_create(training, options, client, retry)
        plan = plan_create(training, options, endpoint=endpoint)
        warn_all(plan.warnings)
        raw = run_flow(create_flow(plan), resolved, retry)
        return cls(raw, client=client, retry=retry)

    @classmethod
    def get(
        cls, job_id: str, *, client: openai.OpenAI | None = None, retry: RetryPolicy | None = None
    ) -> Job:
        """The job with this id.

        Raises:
            openai.NotFoundError: there is no such job.
        """
        resolved = cls._for_get(job_id, client, retry)
        return cls(run_flow(single(retrieve(job_id)), resolved, retry), client=client, retry=retry)

    @classmethod
    def list(
        cls,
        *,
        limit: int | None = None,
        metadata: Mapping[str, str] | None = None,
        client: openai.OpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> Iterator[Job]:
        """Jobs, newest first, fetched a page at a time as the iteration needs them.

        Args:
            limit: stop after this many jobs (None = all).
            metadata: only jobs carrying all these metadata pairs.
            client: the client to use; omitted, the default one.
            retry: the retry policy; omitted, the default one.

        Returns:
            A lazy iterator: ``list(Job.list(limit=20))`` for a list.
        """
        pages, resolved = cls._for_list(limit, metadata, client, retry)
        return cls._iterate(pages, resolved, client, retry)

    @classmethod
    def _iterate(
        cls,
        pages: JobPages,
        resolved: openai.OpenAI,
        client: openai.OpenAI | None,
        retry: RetryPolicy | None,
    ) -> Iterator[Job]:
        while (request := pages.next_request()) is not None:
            for raw in pages.take(run_flow(single(request), resolved, retry)):
                yield cls(raw, client=client, retry=retry)

    def refresh(self) -> Job:
        """Fetch the job's current state; returns ``self``."""
        self._raw = self._run(single(retrieve(self.id)))
        return self

    def events(self) -> builtins.list[Event]:
        """All events so far, oldest first, without duplicates."""
        result: builtins.list[Event] = self._run(events_flow(self.id))
        return result

    def checkpoints(self) -> builtins.list[Checkpoint]:
        """The saved checkpoints, by step."""
        result: builtins.list[Checkpoint] = self._run(checkpoints_flow(self.id))
        return result

    def metrics(self) -> builtins.list[MetricsRow]:
        """Metrics per step: from the result file, or from metrics events while running."""
        result: builtins.list[MetricsRow] = self._run(metrics_flow(self.id))
        return result

    def metrics_summary(self) -> MetricsSummary:
        """Per-epoch losses, whether the job overfit, and the best checkpoint."""
        result: MetricsSummary = self._run(summary_flow(self.id))
        return result

    def wait(
        self,
        *,
        timeout: float | None = None,
        poll_interval: float = 5.0,
        progress: bool = True,
        on_event: Callable[[Event], object] | None = None,
    ) -> TunedModel:
        """Watch the job until it finishes and return the tuned model.

        Polls with backoff (from ``poll_interval`` up to a minute while nothing changes),
        fetching only events it has not seen. Ctrl-C stops the watching, not the job. Time is
        read from the retry policy's ``clock`` (``time.monotonic`` without one).

        Args:
            timeout: give up after this many seconds (None = never; zero or less: poll once).
            poll_interval: seconds between polls while things happen (positive).
            progress: show a progress bar (step of total steps, loss, ETA).
            on_event: called once for each event, oldest first (the history on the first poll).

        Raises:
            JobFailedError: the job failed (``code``, ``message``, ``param`` from the service).
            JobCancelledError: the job was cancelled.
            JobTimeoutError: ``timeout`` passed; the job keeps running.
            TypeError: an argument has the wrong type (before any request).
            ValueError: ``poll_interval`` is not positive (before any request).
        """
        raw = self._run(self._wait_flow(timeout, poll_interval, progress, on_event))
        # Imported on use: the model handle pulls in the classification stack.
        from ..models._tuned_model import TunedModel

        return self._tuned(TunedModel, raw)

    def cancel(self) -> Job:
        """Ask the service to cancel the job; returns ``self`` (updated)."""
        self._raw = self._run(control_flow("cancel", self.id))
        return self

    def pause(self) -> Job:
        """Pause a running job (its checkpoints stay usable); returns ``self``."""
        self._raw = self._run(control_flow("pause", self.id))
        return self

    def resume(self) -> Job:
        """Resume a paused job; returns ``self``."""
        self._raw = self._run(control_flow("resume", self.id))
        return self

    def _repr_html_(self) -> str:
        from ..display import _html_results

        return _html_results.job(self)
