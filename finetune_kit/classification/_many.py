"""Many texts: bounded concurrency, order kept, failures in place, finished work kept.

:func:`classify_many` runs the ladder (``_ladder``) on a pool of threads over the sync
client; :func:`aclassify_many` runs worker tasks on one event loop. A text that fails
becomes a :class:`~finetune_kit.ClassificationError` in its place; an error that would fail
every text stops the call, carrying what was finished (:func:`finished_results`). A pandas
Series comes back as a Series on the same index (pandas is never imported unless given one).
"""

from __future__ import annotations

import asyncio
import importlib
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypedDict, cast, overload

import openai

from .._core.client import arun_flow, run_flow
from .._core.progress import progress_bar
from .._core.retry import FAIL_FAST_CODES
from .._exceptions import ClassificationError
from ._capabilities import async_client, is_settled, sync_client
from ._ladder import Spec, classify_steps, plan_off_loop, prepare_call
from ._options import Call, ClassifyKwargs, check_concurrency, check_texts, split_settings

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence

    from typing_extensions import Required, Unpack

    from .._core.retry import RetryPolicy
    from ._labels import LabelsInput
    from ._options import ClientT
    from ._prompts import TextInput
    from ._results import ItemResult


__all__ = [
    "ClassifyManyKwargs",
    "ManyKwargs",
    "ManySettings",
    "aclassify_many",
    "arun_many",
    "classify_many",
    "finished_results",
    "item_error",
    "run_many",
]


class ManyKwargs(TypedDict, total=False):
    """How a many-texts call runs (:class:`ManySettings`, described at :func:`classify_many`):
    the keywords every many-texts entry point takes besides its classify options."""

    concurrency: int
    progress: bool


class ClassifyManyKwargs(ClassifyKwargs, ManyKwargs, total=False):
    """The ``**options`` of :func:`classify_many`, its async sibling and ``TunedModel``'s
    ``classify_many``/``evaluate``: classify's options and the many-texts keywords."""


@dataclass(frozen=True)
class ManySettings:
    """How a many-texts call runs (each described at :func:`classify_many`)."""

    concurrency: int = 8
    progress: bool = True

    @classmethod
    def split(cls, options: Mapping[str, object]) -> tuple[ManySettings, ClassifyKwargs]:
        """The settings among an entry point's ``**options``, and the rest (see
        ``split_settings``)."""
        own, rest = split_settings(options, _SETTINGS)
        return cls(**own), rest


_SETTINGS: Final = frozenset(f.name for f in fields(ManySettings))


if TYPE_CHECKING:

    class _ManyCallKwargs(ClassifyManyKwargs, Generic[ClientT], total=False):
        """The keywords of :func:`classify_many` (``ClientT`` = ``openai.OpenAI``) and
        :func:`aclassify_many` (``openai.AsyncOpenAI``) besides ``texts``, for their typed
        overloads (a generic TypedDict: type checkers only).
        """

        labels: Required[LabelsInput]
        model: Required[str]
        client: ClientT | None
        retry: RetryPolicy | None


# --- Many texts ------------------------------------------------------------------------------


def item_error(exc: Exception, spec: Spec, index: int) -> ClassificationError:
    """What one failed text becomes in a many-texts result; re-raises what dooms every text.

    Authentication, permission, unknown model and exhausted quota fail every other text the
    same way, so they stop the whole call; so do errors that are not the service's (bugs).
    """
    if isinstance(exc, ClassificationError):
        return exc
    fatal = isinstance(
        exc, (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)
    ) or (isinstance(exc, openai.RateLimitError) and exc.code in FAIL_FAST_CODES)
    if fatal or not isinstance(exc, openai.APIError):
        raise exc
    error = ClassificationError(
        f"text {index}: {type(exc).__name__}: {exc}", raw_output=None, labels=spec.labels.names
    )
    error.__cause__ = exc
    return error


def finished_results(error: BaseException) -> list[ItemResult | None] | None:
    """The results a many-texts call had finished when ``error`` stopped it, in input order.

    ``None`` stands for each text not classified; the function returns None when ``error``
    did not come out of ``classify_many``/``aclassify_many`` (or a TunedModel/task sibling).
    """
    found = vars(error).get("finetune_kit_results") if hasattr(error, "__dict__") else None
    return cast("list[ItemResult | None] | None", found)


def _keep_finished(error: BaseException, results: list[ItemResult | None]) -> None:
    done = sum(r is not None for r in results)
    vars(error)["finetune_kit_results"] = list(results)
    if hasattr(error, "add_note"):  # Python 3.11+
        error.add_note(
            f"finetune_kit: {done} of {len(results)} texts were classified before this error; "
            "finetune_kit.finished_results(error) returns them in input order"
        )


def _needs_probe(spec: Spec, n: int) -> bool:
    # Until one call has settled what the endpoint accepts, send one text alone: otherwise
    # every concurrent first request would hit the same refusal.
    return n > 1 and spec.options.technique == "auto" and not is_settled(spec.key)


class SeriesLike(Protocol):
    """What a pandas Series offers that classify_many uses (no pandas import needed)."""

    @property
    def index(self) -> Any: ...  # pragma: no cover - a protocol

    def __iter__(self) -> Iterator[Any]: ...  # pragma: no cover - a protocol

    def __len__(self) -> int: ...  # pragma: no cover - a protocol


def _series_index(texts: object) -> Hashable | None:
    """The index of a pandas Series (told without importing pandas), else None."""
    kind = type(texts)
    if kind.__name__ == "Series" and kind.__module__.split(".", 1)[0] == "pandas":
        return cast("Hashable", texts.index)  # type: ignore[attr-defined]
    return None


def _shaped(texts: object, results: list[ItemResult]) -> Any:
    index = _series_index(texts)
    if index is None:
        return results
    pandas = importlib.import_module("pandas")  # present: the input is a pandas Series
    return pandas.Series(results, index=index, dtype=object, name=getattr(texts, "name", None))


@overload
def classify_many(
    texts: Sequence[TextInput], **keywords: Unpack[_ManyCallKwargs[openai.OpenAI]]
) -> list[ItemResult]: ...
@overload
def classify_many(texts: SeriesLike, **keywords: Unpack[_ManyCallKwargs[openai.OpenAI]]) -> Any: ...
def classify_many(
    texts: Sequence[TextInput] | SeriesLike,
    *,
    labels: LabelsInput,
    model: str,
    client: openai.OpenAI | None = None,
    retry: RetryPolicy | None = None,
    **options: Unpack[ClassifyManyKwargs],
) -> Any:
    """Classify many texts, ``concurrency`` at a time, results in input order.

    The sync form runs the requests on a pool of threads (at most ``concurrency``, never
    more than the texts) over the thread-safe sync client, so it works anywhere, event loop
    or not. A text that fails yields a :class:`ClassificationError` in its place (SDK errors
    wrapped, the original as ``__cause__``). Errors that would fail every text
    (authentication, permission, unknown model, exhausted quota) stop the call and are raised
    unchanged, carrying the results finished so far: :func:`finished_results` returns them in
    input order. ``labels``, ``model``, ``client`` and ``retry`` are those of :func:`classify`.

    Args:
        texts: the texts (strings or message lists); a list, tuple or pandas Series, not
            one string.
        **options: classify's options (each described at :class:`ClassifyOptions`) and the
            many-texts ones: ``concurrency``, requests in flight at once (default 8);
            ``progress``, show a progress bar (``tqdm.auto``: terminal or notebook; default
            True).

    Returns:
        A list of :class:`Classification` or :class:`ClassificationError`; for a pandas
        Series, a Series of them with the same index.
    """
    settings, rest = ManySettings.split(options)
    call = Call.of("classify_many()", labels, model, client, retry, rest)
    return _shaped(texts, run_many(texts, call, settings))


def _prepare_many(
    texts: object,
    call: Call[ClientT],
    settings: ManySettings,
    resolve: Callable[[ClientT | None, str], ClientT],
) -> tuple[list[TextInput], int, ClientT, Spec]:
    """The checks and set-up :func:`run_many` and :func:`arun_many` share: the texts as a
    list, the number of workers, the client and the spec."""
    items = check_texts(texts)
    workers = check_concurrency(settings.concurrency, len(items))
    resolved, spec = prepare_call(call, resolve)
    return items, workers, resolved, spec


def run_many(texts: object, call: Call[openai.OpenAI], settings: ManySettings) -> list[ItemResult]:
    """:func:`classify_many` with its call built, always a list (every sync entry point)."""
    items, workers, resolved, spec = _prepare_many(texts, call, settings, sync_client)
    results: list[ItemResult | None] = [None] * len(items)

    def run(i: int) -> None:
        try:
            results[i] = run_flow(classify_steps(spec, items[i]), resolved, call.retry)
        except Exception as exc:
            results[i] = item_error(exc, spec, i)

    try:
        with _bar(call.model, len(items), settings.progress) as bar:
            start = 0
            if _needs_probe(spec, len(items)):
                run(0)
                bar.update(1)
                start = 1
            workers = max(1, min(workers, len(items) - start))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                _drain(pool, run, range(start, len(items)), workers, bar.update)
    except Exception as exc:
        # The pool has finished what was in flight: keep what was paid for.
        _keep_finished(exc, results)
        raise
    return cast("list[ItemResult]", results)


def _bar(model: str, total: int, enabled: bool) -> Any:
    return progress_bar(total=total, enabled=enabled, description=f"classify {model}", unit="text")


def _drain(pool: ThreadPoolExecutor, run: Any, indices: range, workers: int, step: Any) -> None:
    # A window of futures rather than one per text: memory stays flat on huge inputs.
    pending: set[Future[None]] = set()
    try:
        for i in indices:
            pending.add(pool.submit(run, i))
            if len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
                    step(1)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()
                step(1)
    finally:
        for future in pending:
            future.cancel()


@overload
async def aclassify_many(
    texts: Sequence[TextInput], **keywords: Unpack[_ManyCallKwargs[openai.AsyncOpenAI]]
) -> list[ItemResult]: ...
@overload
async def aclassify_many(
    texts: SeriesLike, **keywords: Unpack[_ManyCallKwargs[openai.AsyncOpenAI]]
) -> Any: ...
async def aclassify_many(
    texts: Sequence[TextInput] | SeriesLike,
    *,
    labels: LabelsInput,
    model: str,
    client: openai.AsyncOpenAI | None = None,
    retry: RetryPolicy | None = None,
    **options: Unpack[ClassifyManyKwargs],
) -> Any:
    """The async sibling of :func:`classify_many`: worker tasks on one loop."""
    settings, rest = ManySettings.split(options)
    call = Call.of("aclassify_many()", labels, model, client, retry, rest)
    return _shaped(texts, await arun_many(texts, call, settings))


async def arun_many(
    texts: object, call: Call[openai.AsyncOpenAI], settings: ManySettings
) -> list[ItemResult]:
    """The async sibling of :func:`run_many`."""
    items, workers, resolved, spec = _prepare_many(texts, call, settings, async_client)
    await plan_off_loop(spec)
    results: list[ItemResult | None] = [None] * len(items)
    try:
        with _bar(call.model, len(items), settings.progress) as bar:

            async def run(i: int) -> None:
                try:
                    results[i] = await arun_flow(
                        classify_steps(spec, items[i]), resolved, call.retry
                    )
                except Exception as exc:
                    results[i] = item_error(exc, spec, i)
                bar.update(1)

            start = 0
            if _needs_probe(spec, len(items)):
                await run(0)
                start = 1
            indices = iter(range(start, len(items)))

            async def worker() -> None:
                # One shared iterator: next() never awaits, so no two workers take the same text.
                for i in indices:
                    await run(i)

            workers = max(1, min(workers, len(items) - start))
            tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    except Exception as exc:
        _keep_finished(exc, results)
        raise
    return cast("list[ItemResult]", results)
