"""``AsyncJob``: the fine-tuning job shell over an async client (the logic is in the flows).

A create touches Datasets: validation, token counts, the overlap check, reading and hashing
the upload's bytes. On a large file that is seconds of CPU, which on the event loop's thread
would stall every other task. So :meth:`AsyncJob.create` plans in a worker thread and drives
its flow with :func:`arun_flow_off_loop`: the flow's own code (all the Dataset work) runs in a
worker thread, and only the requests run on the loop.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar, cast

import openai

from .._core.client import arun_flow, arun_flow_off_loop, resolve_async_client
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
    from collections.abc import AsyncIterator, Callable, Mapping

    from typing_extensions import Unpack

    from .._core.client import Flow
    from .._core.retry import RetryPolicy
    from ..datasets._dataset import Dataset
    from ..models._tuned_model import AsyncTunedModel
    from ._flows import JobPages
    from ._models import Checkpoint, Event, MetricsRow, MetricsSummary
    from ._options import JobKwargs
    from ._spec import JobSpec

__all__ = ["AsyncJob"]


class AsyncJob(JobShell[openai.AsyncOpenAI]):
    """The async sibling of :class:`Job`: the same methods, as coroutines.

    :meth:`list` is the one exception: like the SDK's async listings it returns an async
    iterator at once (``async for job in AsyncJob.list(): ...``).
    """

    _SYNC: ClassVar[bool] = False
    _resolve = staticmethod(resolve_async_client)

    async def _run(self, flow: Flow[Any]) -> Any:
        return await arun_flow(flow, self._client, self._retry)

    @classmethod
    async def create(
        cls,
        training: Dataset | str,
        *,
        model: str,
        client: openai.AsyncOpenAI | None = None,
        retry: RetryPolicy | None = None,
        **options: Unpack[JobKwargs],
    ) -> AsyncJob:
        """Async :meth:`Job.create`; the Dataset work runs off the event loop's thread."""
        checked = JobOptions.from_kwargs("AsyncJob.create()", model, options)
        return await cls._start(training, checked, client, retry)

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
        resolved, endpoint = cls._for_create(training, options, client, retry)
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
        resolved = cls._for_get(job_id, client, retry)
        raw = await arun_flow(single(retrieve(job_id)), resolved, retry)
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
        pages, resolved = cls._for_list(limit, metadata, client, retry)
        return cls._iterate(pages, resolved, client, retry)

    @classmethod
    async def _iterate(
        cls,
        pages: JobPages,
        resolved: openai.AsyncOpenAI,
        client: openai.AsyncOpenAI | None,
        retry: RetryPolicy | None,
    ) -> AsyncIterator[AsyncJob]:
        while (request := pages.next_request()) is not None:
            for raw in pages.take(await arun_flow(single(request), resolved, retry)):
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
        raw = await self._run(self._wait_flow(timeout, poll_interval, progress, on_event))
        from ..models._tuned_model import AsyncTunedModel

        return self._tuned(AsyncTunedModel, raw)

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

    def _repr_html_(self) -> str:
        # A notebook's display hook cannot await: the card shows what this object knows.
        from ..display import _html_results

        return _html_results.async_job(self)
