"""classify(): the answer is always one of the labels. The runners for one and many texts.

The technique ladder (DESIGN.md §8), chosen per model by what the endpoint accepts:

1. ``logit_bias`` - every label's first token, in the model's own encoding, gets a bias of
   +100 and the reply is one token long, so the model can only start a label; ``logprobs``
   returns the distribution over those tokens, renormalised into label probabilities. Labels
   whose first tokens collide are listed under single-token aliases (``A``, ``B``, ... or
   ``1``, ``2``, ...) and the aliases are biased instead.
2. ``structured`` - a strict JSON schema whose ``label`` is an ``enum`` of the labels, for
   endpoints that refuse ``logit_bias``.
3. ``prompt`` - the labels are listed, the answer matched exactly, then case- and
   whitespace-insensitively; a bounded number of re-asks follow; then
   :class:`~finetune_kit.ClassificationError` (or an abstention when the caller allows one).

The pieces: ``_labels`` (label sets, aliases), ``_prompts`` (system prompt, schema),
``_capabilities`` (what each client's endpoints accept; the client of a call), ``_options``
(:class:`ClassifyOptions` and the argument checks), ``_ladder`` (the pure generator that
decides every request). This module runs it: one text (:func:`classify`, :func:`aclassify`)
or many (:func:`classify_many` on threads, :func:`aclassify_many` on one event loop).
"""

from __future__ import annotations

import asyncio
import importlib
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, cast, overload

import openai

from .._core.client import arun_flow, run_flow
from .._core.progress import progress_bar
from .._core.retry import FAIL_FAST_CODES
from .._exceptions import ClassificationError
from ..facts._tokens import encoding_name_for_model, get_encoding
from ._capabilities import (
    async_client,
    capability_key,
    forget_capabilities,
    is_settled,
    known_refusals,
    refused_parameter,
    remember_refusal,
    sync_client,
)
from ._labels import LabelSet, LabelsInput, cached_plan, match_label, plan_keys
from ._ladder import Spec, chat_request, classify_steps
from ._options import (
    ClassifyOptions,
    check_concurrency,
    check_model,
    check_retry,
    check_text,
    check_texts,
)
from ._prompts import ExamplesInput, Message, TextInput, user_turns
from ._results import Classification, ItemResult, Technique, TechniqueChoice, TokenUsage

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterator, Sequence

    from typing_extensions import Required, Unpack

    from .._core.retry import RetryPolicy

    class ManyKeywords(TypedDict, total=False):
        """The keywords of :func:`classify_many` besides ``texts`` (for its typed overloads)."""

        labels: Required[LabelsInput]
        model: Required[str]
        client: openai.OpenAI | None
        instructions: str | None
        examples: ExamplesInput | None
        technique: TechniqueChoice
        abstain_below: float | None
        retry: RetryPolicy | None
        reasks: int
        base_model: str | None
        concurrency: int
        progress: bool

    class AsyncManyKeywords(TypedDict, total=False):
        """The keywords of :func:`aclassify_many` besides ``texts``."""

        labels: Required[LabelsInput]
        model: Required[str]
        client: openai.AsyncOpenAI | None
        instructions: str | None
        examples: ExamplesInput | None
        technique: TechniqueChoice
        abstain_below: float | None
        retry: RetryPolicy | None
        reasks: int
        base_model: str | None
        concurrency: int
        progress: bool


__all__ = [
    "Classification",
    "ClassifyOptions",
    "ExamplesInput",
    "ItemResult",
    "LabelSet",
    "LabelsInput",
    "Message",
    "Spec",
    "Technique",
    "TechniqueChoice",
    "TextInput",
    "TokenUsage",
    "aclassify",
    "aclassify_many",
    "async_client",
    "capability_key",
    "chat_request",
    "classify",
    "classify_many",
    "classify_steps",
    "finished_results",
    "forget_capabilities",
    "is_settled",
    "item_error",
    "known_refusals",
    "match_label",
    "plan_keys",
    "refused_parameter",
    "remember_refusal",
    "run_many",
    "sync_client",
    "user_turns",
    "warm_up",
]


def warm_up(*, model: str, base_model: str | None = None) -> None:
    """Load ``model``'s token encoding now (0.5-1 s the first time), not in the first call.

    Async code can run it off the loop: ``await asyncio.to_thread(warm_up, model=...)``
    (:func:`aclassify` itself never loads an encoding on the event loop's thread).

    Args:
        model: the model whose encoding classify() will need.
        base_model: the model to take the encoding from when ``model`` does not tell.
    """
    check_model(model)
    get_encoding(encoding_name_for_model(base_model or model))


async def _plan_off_loop(spec: Spec) -> None:
    # Loading an encoding takes 0.5-0.9 s of CPU: on the loop's thread it would stall every
    # other task. Only the first call per labels and model pays the thread hop.
    if spec.may_need_plan() and (
        cached_plan(spec.labels.names, spec.encoding_model or spec.model) is None
    ):
        await asyncio.to_thread(spec.plan)


# --- One text --------------------------------------------------------------------------------


def classify(
    text: TextInput,
    *,
    labels: LabelsInput,
    model: str,
    client: openai.OpenAI | None = None,
    instructions: str | None = None,
    examples: ExamplesInput | None = None,
    technique: TechniqueChoice = "auto",
    abstain_below: float | None = None,
    retry: RetryPolicy | None = None,
    reasks: int = 2,
    base_model: str | None = None,
) -> Classification:
    """Classify ``text`` into exactly one of ``labels``.

    Args:
        text: a string (sent as the user's message) or a list of chat messages.
        labels: a sequence of strings, an Enum class, or a mapping label -> description.
        model: the model (or Azure deployment) to ask.
        client: an ``openai.OpenAI`` (or ``AzureOpenAI``) client; omitted, one is built from
            ``OPENAI_*``. Read at every call: a rotated key or changed ``base_url`` applies.
        instructions: what the classification is about, put first in the system prompt
            (default ``"Classify the text."``).
        examples: few-shot (text, label) pairs shown as earlier turns.
        technique: ``"auto"`` walks the ladder as the endpoint allows; a named technique is
            used or fails.
        abstain_below: return ``label=None`` when the chosen label's probability is below
            this (and, instead of raising, when no label can be read from the answer).
        retry: how transient errors are retried (default :data:`DEFAULT_RETRY`).
        reasks: how many times the ``prompt`` technique asks again after an answer that is
            none of the labels.
        base_model: the model whose token encoding to use when ``model`` is a name the
            encoding cannot be told from (an Azure deployment, a local alias).

    Returns:
        The :class:`Classification`.

    Raises:
        TypeError: an argument of the wrong type (e.g. an ``AsyncOpenAI`` client).
        ValueError: an argument with a wrong value (e.g. an empty text).
        ClassificationError: no label could be read from the answer (and ``abstain_below`` is
            None).
        openai.APIError: the request failed for another reason (after retries).
    """
    options = ClassifyOptions.of(
        instructions=instructions,
        examples=examples,
        technique=technique,
        abstain_below=abstain_below,
        reasks=reasks,
        base_model=base_model,
    )
    return classify_with(text, labels, model, client, options, retry)


def classify_with(
    text: TextInput,
    labels: LabelsInput | LabelSet,
    model: str,
    client: openai.OpenAI | None,
    options: ClassifyOptions,
    retry: RetryPolicy | None,
    *,
    as_trained: bool = False,
    where: str = "classify()",
) -> Classification:
    """:func:`classify` with checked options (every sync single-text entry point)."""
    check_model(model)
    check_text(text)
    check_retry(retry)
    resolved = sync_client(client, where)
    spec = Spec.of(labels, model, capability_key(resolved, model), options, as_trained=as_trained)
    return run_flow(classify_steps(spec, text), resolved, retry)


async def aclassify(
    text: TextInput,
    *,
    labels: LabelsInput,
    model: str,
    client: openai.AsyncOpenAI | None = None,
    instructions: str | None = None,
    examples: ExamplesInput | None = None,
    technique: TechniqueChoice = "auto",
    abstain_below: float | None = None,
    retry: RetryPolicy | None = None,
    reasks: int = 2,
    base_model: str | None = None,
) -> Classification:
    """The async sibling of :func:`classify` (same arguments, an ``AsyncOpenAI`` client)."""
    options = ClassifyOptions.of(
        instructions=instructions,
        examples=examples,
        technique=technique,
        abstain_below=abstain_below,
        reasks=reasks,
        base_model=base_model,
    )
    return await aclassify_with(text, labels, model, client, options, retry)


async def aclassify_with(
    text: TextInput,
    labels: LabelsInput | LabelSet,
    model: str,
    client: openai.AsyncOpenAI | None,
    options: ClassifyOptions,
    retry: RetryPolicy | None,
    *,
    as_trained: bool = False,
    where: str = "aclassify()",
) -> Classification:
    """The async sibling of :func:`classify_with`."""
    check_model(model)
    check_text(text)
    check_retry(retry)
    resolved = async_client(client, where)
    spec = Spec.of(labels, model, capability_key(resolved, model), options, as_trained=as_trained)
    await _plan_off_loop(spec)
    return await arun_flow(classify_steps(spec, text), resolved, retry)


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
    return n > 1 and spec.choice == "auto" and not is_settled(spec.key)


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
    texts: Sequence[TextInput], **keywords: Unpack[ManyKeywords]
) -> list[ItemResult]: ...
@overload
def classify_many(texts: SeriesLike, **keywords: Unpack[ManyKeywords]) -> Any: ...
def classify_many(
    texts: Sequence[TextInput] | SeriesLike,
    *,
    labels: LabelsInput,
    model: str,
    client: openai.OpenAI | None = None,
    instructions: str | None = None,
    examples: ExamplesInput | None = None,
    technique: TechniqueChoice = "auto",
    abstain_below: float | None = None,
    retry: RetryPolicy | None = None,
    reasks: int = 2,
    base_model: str | None = None,
    concurrency: int = 8,
    progress: bool = True,
) -> Any:
    """Classify many texts, ``concurrency`` at a time, results in input order.

    The sync form runs the requests on a pool of threads (at most ``concurrency``, never
    more than the texts) over the thread-safe sync client, so it works anywhere, event loop
    or not. A text that fails yields a :class:`ClassificationError` in its place (SDK errors
    wrapped, the original as ``__cause__``). Errors that would fail every text
    (authentication, permission, unknown model, exhausted quota) stop the call and are raised
    unchanged, carrying the results finished so far: :func:`finished_results` returns them in
    input order. The other arguments are those of :func:`classify`.

    Args:
        texts: the texts (strings or message lists); a list, tuple or pandas Series, not
            one string.
        concurrency: requests in flight at once.
        progress: show a progress bar (``tqdm.auto``: terminal or notebook).

    Returns:
        A list of :class:`Classification` or :class:`ClassificationError`; for a pandas
        Series, a Series of them with the same index.
    """
    options = ClassifyOptions.of(
        instructions=instructions,
        examples=examples,
        technique=technique,
        abstain_below=abstain_below,
        reasks=reasks,
        base_model=base_model,
    )
    found = run_many(texts, labels, model, client, options, retry, concurrency, progress)
    return _shaped(texts, found)


def run_many(
    texts: object,
    labels: LabelsInput | LabelSet,
    model: str,
    client: openai.OpenAI | None,
    options: ClassifyOptions,
    retry: RetryPolicy | None,
    concurrency: int,
    progress: bool,
    *,
    as_trained: bool = False,
    where: str = "classify_many()",
) -> list[ItemResult]:
    """:func:`classify_many` with checked options, always a list (every sync entry point)."""
    check_model(model)
    items = check_texts(texts)
    workers = check_concurrency(concurrency, len(items))
    check_retry(retry)
    resolved = sync_client(client, where)
    spec = Spec.of(labels, model, capability_key(resolved, model), options, as_trained=as_trained)
    results: list[ItemResult | None] = [None] * len(items)

    def run(i: int) -> None:
        try:
            results[i] = run_flow(classify_steps(spec, items[i]), resolved, retry)
        except Exception as exc:
            results[i] = item_error(exc, spec, i)

    try:
        with progress_bar(
            total=len(items), enabled=progress, description=f"classify {model}", unit="text"
        ) as bar:
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
    texts: Sequence[TextInput], **keywords: Unpack[AsyncManyKeywords]
) -> list[ItemResult]: ...
@overload
async def aclassify_many(texts: SeriesLike, **keywords: Unpack[AsyncManyKeywords]) -> Any: ...
async def aclassify_many(
    texts: Sequence[TextInput] | SeriesLike,
    *,
    labels: LabelsInput,
    model: str,
    client: openai.AsyncOpenAI | None = None,
    instructions: str | None = None,
    examples: ExamplesInput | None = None,
    technique: TechniqueChoice = "auto",
    abstain_below: float | None = None,
    retry: RetryPolicy | None = None,
    reasks: int = 2,
    base_model: str | None = None,
    concurrency: int = 8,
    progress: bool = True,
) -> Any:
    """The async sibling of :func:`classify_many`: worker tasks on one loop."""
    options = ClassifyOptions.of(
        instructions=instructions,
        examples=examples,
        technique=technique,
        abstain_below=abstain_below,
        reasks=reasks,
        base_model=base_model,
    )
    found = await arun_many(texts, labels, model, client, options, retry, concurrency, progress)
    return _shaped(texts, found)


async def arun_many(
    texts: object,
    labels: LabelsInput | LabelSet,
    model: str,
    client: openai.AsyncOpenAI | None,
    options: ClassifyOptions,
    retry: RetryPolicy | None,
    concurrency: int,
    progress: bool,
    *,
    as_trained: bool = False,
    where: str = "aclassify_many()",
) -> list[ItemResult]:
    """The async sibling of :func:`run_many`."""
    check_model(model)
    items = check_texts(texts)
    workers = check_concurrency(concurrency, len(items))
    check_retry(retry)
    resolved = async_client(client, where)
    spec = Spec.of(labels, model, capability_key(resolved, model), options, as_trained=as_trained)
    await _plan_off_loop(spec)
    results: list[ItemResult | None] = [None] * len(items)
    try:
        with progress_bar(
            total=len(items), enabled=progress, description=f"classify {model}", unit="text"
        ) as bar:

            async def run(i: int) -> None:
                try:
                    results[i] = await arun_flow(classify_steps(spec, items[i]), resolved, retry)
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
