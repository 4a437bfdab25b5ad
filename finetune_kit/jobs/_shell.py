"""What ``Job`` and ``AsyncJob`` share: their state, the checks of each call, and its flows.

The two shells differ only in how a flow runs (``run_flow`` or ``await arun_flow``) and in
the client and model-handle classes; everything a method decides before and after running its
flow lives here once, so the twins cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

import openai

from .._core.session import default_session, endpoint_of
from ._flows import JobPages
from ._options import check_client, check_create, check_job_id, check_list, check_retry, check_wait
from ._raw import JobView
from ._watch import watch

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from openai.types.fine_tuning import FineTuningJob

    from .._core.client import Flow
    from .._core.retry import RetryPolicy
    from ..datasets._dataset import Dataset
    from ..facts._endpoints import EndpointKind
    from ._models import Event
    from ._options import JobOptions

__all__ = ["JobShell"]

C = TypeVar("C", openai.OpenAI, openai.AsyncOpenAI)
H = TypeVar("H")


class JobShell(JobView, Generic[C]):
    """A job with the client and retry policy it was obtained with (``C``: the client class).

    Subclasses set ``_SYNC`` and ``_resolve`` (how an omitted client becomes the default one).
    """

    _SYNC: ClassVar[bool]

    # Provided by each shell (``resolve_client`` or ``resolve_async_client``); declared here,
    # without a body, only so this class type-checks.
    if TYPE_CHECKING:

        @staticmethod
        def _resolve(client: Any) -> Any: ...

    def __init__(
        self, raw: FineTuningJob, *, client: C | None = None, retry: RetryPolicy | None = None
    ) -> None:
        self._raw = raw
        self._user_client: C | None = client
        self._client: C = self._checked(client, retry)
        self._retry = retry

    @classmethod
    def _checked(cls, client: C | None, retry: RetryPolicy | None) -> C:
        """The client to send with, after refusing the other kind of client or a bad retry."""
        check_client(client, sync=cls._SYNC)
        check_retry(retry)
        resolved: C = cls._resolve(client)
        return resolved

    @classmethod
    def _for_create(
        cls,
        training: Dataset | str,
        options: JobOptions,
        client: C | None,
        retry: RetryPolicy | None,
    ) -> tuple[C, EndpointKind]:
        """The client a create sends with, and whose facts its plan follows."""
        check_create(training, options, client, retry, sync=cls._SYNC)
        resolved: C = cls._resolve(client)
        return resolved, endpoint_of(resolved, endpoint=default_session().endpoint)

    @classmethod
    def _for_get(cls, job_id: str, client: C | None, retry: RetryPolicy | None) -> C:
        check_job_id(job_id)
        return cls._checked(client, retry)

    @classmethod
    def _for_list(
        cls,
        limit: int | None,
        metadata: Mapping[str, str] | None,
        client: C | None,
        retry: RetryPolicy | None,
    ) -> tuple[JobPages, C]:
        """The pages to fetch and the client to fetch them with."""
        wanted = check_list(limit, metadata)
        return JobPages(limit, wanted), cls._checked(client, retry)

    def _set_raw(self, raw: FineTuningJob) -> None:
        self._raw = raw

    def _wait_flow(
        self,
        timeout: float | None,
        poll_interval: float,
        progress: bool,
        on_event: Callable[[Event], object] | None,
    ) -> Flow[FineTuningJob]:
        """``wait()``'s flow, its arguments checked first (see :meth:`Job.wait`)."""
        check_wait(timeout, poll_interval, on_event)
        return watch(
            self._raw,
            self._retry,
            self._set_raw,
            timeout=timeout,
            poll_interval=poll_interval,
            progress=progress,
            on_event=on_event,
        )

    def _tuned(self, handle: Callable[..., H], raw: FineTuningJob) -> H:
        """The model handle (``TunedModel`` or its async twin) for the finished job ``raw``."""
        return handle(
            cast("str", raw.fine_tuned_model),
            client=self._user_client,
            job_id=raw.id,
            base_model=raw.model,
        )
