"""``AsyncJob``: the fine-tuning job shell over an async client (the logic is in the flows).

A create touches Datasets: validation, token counts, the overlap check, reading and hashing
the upload's bytes. On a large file that is seconds of CPU, which on the event loop's thread
would stall every other task. So :meth:`AsyncJob.create` plans in a worker thread and drives
its flow with :func:`arun_flow_off_loop`: the flow's own code (all the Dataset work) runs in a
worker thread, and only the requests run on the loop.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from .._core.client import arun_flow, arun_flow_off_loop, resolve_async_client
from .._core.session import default_session, endpoint_of
from ._flows import (
    JobPages,
    checkpoints_flow,
    control_flow,
    create_flow,
    events_flow,
    metrics_flow,
    plan_create,
    summary_flow,
)
from ._options import (
    JobOptions,
    check_client,
    check_create,
    check_job_id,
    check_list,
    check_retry,
    check_wait,
    warn_all,
)
from ._raw import JobView
from ._requests import retrieve, single
from ._watch import watch

if TYPE_CHECKING:
    import builtins
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence

    import openai
    from openai.types.fine_tuning import FineTuningJob

    from .._core.client import Flow
    from .._core.retry import RetryPolicy
    from ..datasets._dataset import Dataset
    from ..models._tuned_model import AsyncTunedModel
    from ._models import Checkpoint, Event, MetricsRow, MetricsSummary
    from ._spec import JobSpec

__all__ = ["AsyncJob"]


class AsyncJob(JobView):
    """The async sibling of :class:`Job`: the same methods, as coroutines.

    :meth:`list` is the one exception: like the SDK's async listings it returns an async
    iterator at once (``async for job in AsyncJob.list(): ...``).
    """

    def __init__(
        self,
        raw: FineTuningJob,
        *,
        client: openai.AsyncOpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        check_client(client, sync=False)
        check_retry(retry)
        self._raw = raw
        self._user_client = client
        self._client = resolve_async_client(client)
        self._retry = retry

    async def _run(self, flow: Flow[Any]) -> Any:
        return await arun_flow(flow, self._client, self._retry)

    def _set_raw(self, raw: FineTuningJob) -> None:
        self._raw = raw

    @classmethod
    async def create(
        cls,
        training: Dataset | str,
        *,
        model: str,
        validation: Dataset | str | None = None,
        method: str = "supervised",
        hyperparameters: Mapping[str, object] | None = None,
        grader: Mapping[str, object] | None = None,
        suffix: str | None = None,
        seed: int | None = None,
        metadata: Mapping[str, str] | None = None,
        integrations: Sequence[Mapping[str, object]] | None = None,
        idempotency_key: str | None = None,
        tier: str | None = None,
        client: openai.AsyncOpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncJob:
        """Async :meth:`Job.create`; the Dataset work runs off the event loop's thread."""
        options = JobOptions(
            model=model,
            validation=validation,
            method=method,
            hyperparameters=hyperparameters,
            grader=grader,
            suffix=suffix,
            seed=seed,
            metadata=metadata,
            integrations=integrations,
            idempotency_key=idempotency_key,
            tier=tier,
        )
        return await cls._start(training, options, client, retry)

    @classmethod
    async def create_from(
        cls,
        training: Dataset | str,
        options: JobOptions,
        *,
        client: openai.AsyncOpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncJob:
        """Async :meth:`Job.create_from`."""
        return await cls._start(training, options, client, retry)

    async def spec(self, *, tier: str | None = None) -> JobSpec:
        """See :meth:`Job.spec`."""
        return cast("JobSpec", await self._run(self._spec_flow(tier)))

    @classmethod
    async def create_from_spec(
        cls,
        spec: JobSpec,
        training: Dataset,
        *,
        validation: Dataset | None = None,
        idempotency_key: str | None = None,
        client: openai.AsyncOpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncJob:
        """See :meth:`Job.create_from_spec`."""
        options = spec.options(training, validation=validation, idempotency_key=idempotency_key)
        return await cls._start(training, options, client, retry)

    @classmethod
    async def _start(
        cls,
        training: Dataset | str,
        options: JobOptions,
        client: openai.AsyncOpenAI | None,
        retry: RetryPolicy | None,
    ) -> AsyncJob:
        check_create(training, options, client, retry, sync=False)
        resolved = resolve_async_client(client)
        endpoint = endpoint_of(resolved, endpoint=default_session().endpoint)
        plan = await asyncio.to_thread(plan_create, training, options, endpoint=endpoint)
        warn_all(plan.warnings)
        raw = await arun_flow_off_loop(create_flow(plan), resolved, retry)
        return cls(raw, client=client, retry=retry)

    @classmethod
    async def get(
        cls,
        job_id: str,
        *,
        client: openai.AsyncOpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncJob:
        """Async :meth:`Job.get`."""
        check_job_id(job_id)
        check_client(client, sync=False)
        check_retry(retry)
        raw = await arun_flow(single(retrieve(job_id)), resolve_async_client(client), retry)
        return cls(raw, client=client, retry=retry)

    @classmethod
    def list(
        cls,
        *,
        limit: int | None = None,
        metadata: Mapping[str, str] | None = None,
        client: openai.AsyncOpenAI | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncIterator[AsyncJob]:
        """:meth:`Job.list` as an async iterator: ``async for job in AsyncJob.list(): ...``."""
        wanted = check_list(limit, metadata)
        check_client(client, sync=False)
        check_retry(retry)
        return cls._iterate(JobPages(limit, wanted), resolve_async_client(client), client, retry)

    @classmethod
    async def _iterate(
        cls,
        pages: JobPages,
        resolved: openai.AsyncOpenAI,
        client: openai.AsyncOpenAI | None,
        retry: RetryPolicy | None,
    ) -> AsyncIterator[AsyncJob]:
        while (request := pages.next_request()) is not None:
            page = await arun_flow(single(request), resolved, retry)
            for raw in pages.take(page):
                yield cls(raw, client=client, retry=retry)

    async def refresh(self) -> AsyncJob:
        """Async :meth:`Job.refresh`."""
        self._raw = await self._run(single(retrieve(self.id)))
        return self

    async def events(self) -> builtins.list[Event]:
        """Async :meth:`Job.events`."""
        result: builtins.list[Event] = await self._run(events_flow(self.id))
        return result

    async def checkpoints(self) -> builtins.list[Checkpoint]:
        """Async :meth:`Job.checkpoints`."""
        result: builtins.list[Checkpoint] = await self._run(checkpoints_flow(self.id))
        return result

    async def metrics(self) -> builtins.list[MetricsRow]:
        """Async :meth:`Job.metrics`."""
        result: builtins.list[MetricsRow] = await self._run(metrics_flow(self.id))
        return result

    async def metrics_summary(self) -> MetricsSummary:
        """Async :meth:`Job.metrics_summary`."""
        result: MetricsSummary = await self._run(summary_flow(self.id))
        return result

    async def wait(
        self,
        *,
        timeout: float | None = None,
        poll_interval: float = 5.0,
        progress: bool = True,
        on_event: Callable[[Event], object] | None = None,
    ) -> AsyncTunedModel:
        """Async :meth:`Job.wait` (returns an :class:`AsyncTunedModel`)."""
        check_wait(timeout, poll_interval, on_event)
        flow = watch(
            self._raw,
            self._retry,
            self._set_raw,
            timeout=timeout,
            poll_interval=poll_interval,
            progress=progress,
            on_event=on_event,
        )
        raw: FineTuningJob = await self._run(flow)
        from ..models._tuned_model import AsyncTunedModel

        return AsyncTunedModel(
            cast("str", raw.fine_tuned_model),
            client=self._user_client,
            job_id=raw.id,
            base_model=raw.model,
        )

    async def cancel(self) -> AsyncJob:
        """Async :meth:`Job.cancel`."""
        self._raw = await self._run(control_flow("cancel", self.id))
        return self

    async def pause(self) -> AsyncJob:
        """Async :meth:`Job.pause`."""
        self._raw = await self._run(control_flow("pause", self.id))
        return self

    async def resume(self) -> AsyncJob:
        """Async :meth:`Job.resume`."""
        self._raw = await self._run(control_flow("resume", self.id))
        return self
