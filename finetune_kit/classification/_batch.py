"""classify_batch(): the same classification requests through the Batch API.

For very large jobs at about half the price: the requests :func:`~finetune_kit.classify`
would send go into JSONL input files (at most 50,000 requests and 190 MB per file, the
service's limits with a margin), one batch per file on ``/v1/chat/completions`` with the 24 h
window; the batches are polled until they end, their output and error files downloaded and
matched to the texts by ``custom_id``; results come back in input order.

The ladder needs answers to choose a rung, and a batch cannot change course midway: so when
the endpoint's capabilities for the model are not yet known, the first text is classified
live first (at the normal price) and the batch uses the rung that worked. The batch still
carries every text, the first one included: so the batch, and the idempotency key derived from
it, do not depend on whether this process already knew the model, and a re-run in the same
process finds the batch a first run created (see ``_batch_submit``). Answers that need a
follow-up (a re-ask of the ``prompt`` rung) get it live, one by one. Each text's answer is
read by the same code as :func:`~finetune_kit.classify`, so the guarantee is the same.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Final

import openai
import pydantic
from openai.types.chat import ChatCompletion

from .._core.client import Request, Sleep, arun_flow, run_flow
from .._core.progress import progress_bar
from .._exceptions import ClassificationError
from ._batch_submit import ENDPOINT, check_key, delete_files, derive_key, submit
from ._capabilities import async_client, is_settled, sync_client
from ._ladder import Spec, classify_steps, prepare_call
from ._many import item_error
from ._options import Call, ClassifyKwargs, split_settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from openai.types import Batch
    from typing_extensions import Unpack

    from .._core.client import Flow
    from .._core.retry import RetryPolicy
    from ._labels import LabelsInput
    from ._options import ClientT
    from ._prompts import TextInput
    from ._results import ItemResult, Technique

__all__ = [
    "BatchKwargs",
    "BatchSettings",
    "aclassify_batch",
    "arun_batch",
    "classify_batch",
    "run_batch",
]

logger = logging.getLogger("finetune_kit")

#: Requests per input file (the Batch API's limit).
MAX_REQUESTS: Final = 50_000
#: Bytes per input file: the limit is 200 MB; the margin covers JSON size estimates.
MAX_BYTES: Final = 190 * 1024 * 1024
_CREATOR: Final = "finetune_kit classify_batch"
_TERMINAL: Final = frozenset({"completed", "failed", "expired", "cancelled"})


def custom_id(index: int) -> str:
    """The ``custom_id`` of the text at ``index``."""
    return f"text-{index}"


def input_files(
    spec: Spec,
    texts: Sequence[TextInput],
    indices: Iterable[int],
    technique: Technique,
    refused: set[str],
    *,
    max_requests: int | None = None,
    max_bytes: int | None = None,
) -> Iterator[tuple[list[int], bytes]]:
    """The JSONL input files: (the indices of the texts in it, its content), in order.

    Args:
        max_requests: requests per file (default :data:`MAX_REQUESTS`).
        max_bytes: bytes per file (default :data:`MAX_BYTES`).
    """
    max_requests = max_requests or MAX_REQUESTS
    max_bytes = max_bytes or MAX_BYTES
    chunk: list[int] = []
    lines: list[bytes] = []
    size = 0
    for i in indices:
        body = spec.body(technique, spec.messages(technique, texts[i]), refused)
        request = {"custom_id": custom_id(i), "method": "POST", "url": ENDPOINT, "body": body}
        line = json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        if chunk and (len(chunk) >= max_requests or size + len(line) > max_bytes):
            yield chunk, b"".join(lines)
            chunk, lines, size = [], [], 0
        chunk.append(i)
        lines.append(line)
        size += len(line)
    if chunk:
        yield chunk, b"".join(lines)


def read_output(content: bytes) -> dict[str, ChatCompletion | str]:
    """An output or error file: ``custom_id`` -> the completion, or what went wrong."""
    found: dict[str, ChatCompletion | str] = {}
    for raw in content.splitlines():
        if not raw.strip():
            continue
        line = json.loads(raw)
        key = str(line.get("custom_id"))
        response = line.get("response") or {}
        body = response.get("body")
        error = line.get("error")
        status = response.get("status_code")
        if error:
            found[key] = f"{error.get('code') or 'error'}: {error.get('message')}"
        elif status != 200 or not isinstance(body, dict):
            inner = body.get("error") if isinstance(body, dict) else None
            message = inner.get("message") if isinstance(inner, dict) else body
            found[key] = f"HTTP {status}: {message}"
        else:
            try:
                found[key] = ChatCompletion.model_validate(body)
            except pydantic.ValidationError as exc:
                found[key] = f"unreadable completion: {exc}"
    return found


def _retrieve(batch_id: str) -> Request:
    return Request(f"retrieve batch {batch_id}", lambda c: c.batches.retrieve(batch_id))


def _download(file_id: str) -> Request:
    return Request(f"download batch file {file_id}", lambda c: c.files.content(file_id))


def _why_missing(batch: Batch) -> str:
    if batch.status == "failed" and batch.errors and batch.errors.data:
        reasons = "; ".join(f"{e.code}: {e.message}" for e in batch.errors.data[:3])
        return f"batch {batch.id} failed ({reasons})"
    return f"batch {batch.id} ended {batch.status} before this text was processed"


def _poll(
    batches: list[Batch],
    *,
    poll_interval: float,
    timeout: float | None,
    clock: Callable[[], float],
    bar: Any,
) -> Flow[list[Batch]]:
    """Retrieve the batches until every one has ended; the deadline is read from ``clock``."""
    started = clock()
    while True:
        for k, batch in enumerate(batches):
            if batch.status not in _TERMINAL:
                batches[k] = yield _retrieve(batch.id)
        done = sum(
            b.request_counts.completed + b.request_counts.failed
            for b in batches
            if b.request_counts is not None
        )
        bar.update(max(0, done - bar.n))
        running = [b.id for b in batches if b.status not in _TERMINAL]
        if not running:
            return batches
        delay = poll_interval
        if timeout is not None:
            # The clock, not a sum of intervals: requests and slow replies take time too.
            elapsed = clock() - started
            if elapsed >= timeout:
                raise TimeoutError(
                    f"batches {', '.join(running)} still running after {elapsed:.0f}s; they "
                    "keep running on the service, and calling again with the same texts and "
                    "options (or idempotency_key) picks them up instead of paying again"
                )
            delay = min(delay, timeout - elapsed)
        yield Sleep(delay)


def _answers(batch: Batch) -> Flow[tuple[dict[str, ChatCompletion | str], str | None]]:
    """A batch's answers by ``custom_id``, and why some may be missing (a file gone)."""
    answers: dict[str, ChatCompletion | str] = {}
    lost: str | None = None
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            continue
        try:
            content = yield _download(file_id)
        except openai.NotFoundError:
            lost = f"file {file_id} of batch {batch.id} no longer exists"
            logger.warning("%s", lost)
            continue
        answers.update(read_output(content.content))
    return answers, lost


class BatchKwargs(ClassifyKwargs, total=False):
    """The keywords of every batch entry point (:func:`classify_batch`, its async sibling and
    ``TunedModel.classify_batch``) besides the texts, labels, model, client and ``retry``:
    classify's options, and the batch's own (:class:`BatchSettings`, described at
    :func:`classify_batch`)."""

    poll_interval: float
    timeout: float | None
    idempotency_key: str | None
    keep_files: bool
    progress: bool


@dataclass(frozen=True)
class BatchSettings:
    """What only the batch path takes (each described at :func:`classify_batch`)."""

    poll_interval: float = 30.0
    timeout: float | None = None
    idempotency_key: str | None = None
    keep_files: bool = False
    progress: bool = True

    @classmethod
    def split(cls, options: BatchKwargs) -> tuple[BatchSettings, ClassifyKwargs]:
        """The settings among a batch entry point's ``**options``, and the rest (classify's
        options, or unknown keywords for ``ClassifyOptions.from_kwargs`` to refuse)."""
        own, rest = split_settings(options, _SETTINGS)
        return cls(**own), rest


_SETTINGS: Final = frozenset(f.name for f in fields(BatchSettings))


def batch_flow(
    spec: Spec,
    texts: Sequence[TextInput],
    settings: BatchSettings,
    *,
    clock: Callable[[], float],
    bar: Any,
) -> Flow[list[ItemResult]]:
    """The whole batch path as a flow: probe, submit, poll, download, read, clean up."""
    results: list[ItemResult | None] = [None] * len(texts)
    if texts and spec.options.technique == "auto" and not is_settled(spec.key):
        try:
            results[0] = yield from classify_steps(spec, texts[0])
        except Exception as exc:
            results[0] = item_error(exc, spec, 0)
        bar.update(1)
    technique, refused = spec.start()
    # Every text, the probed one too (its batch answer goes unused): what is sent must not
    # depend on what this process happens to remember, or a re-run would not find the batch.
    files = list(input_files(spec, texts, range(len(texts)), technique, refused))
    contents = [content for _, content in files]
    key = settings.idempotency_key or derive_key(spec.model, contents)
    batches = yield from submit(contents, key=key, model=spec.model, creator=_CREATOR)
    for batch, (indices, _) in zip(batches, files, strict=True):
        logger.info("batch %s: %d texts for %s (key %s)", batch.id, len(indices), spec.model, key)
    batches = yield from _poll(
        batches,
        poll_interval=settings.poll_interval,
        timeout=settings.timeout,
        clock=clock,
        bar=bar,
    )

    for batch, (indices, _) in zip(batches, files, strict=True):
        answers, lost = yield from _answers(batch)
        if batch.status != "completed":
            logger.warning("%s", _why_missing(batch))
        for i in indices:
            if results[i] is not None:
                continue  # the probed text: answered live already
            answer = answers.get(custom_id(i))
            if answer is None:
                answer = lost if lost and batch.status == "completed" else _why_missing(batch)
            if isinstance(answer, str):
                results[i] = ClassificationError(
                    f"text {i}: {answer}", raw_output=None, labels=spec.labels.names
                )
                continue
            try:
                results[i] = yield from classify_steps(
                    spec, texts[i], prefetched=(technique, answer)
                )
            except Exception as exc:
                results[i] = item_error(exc, spec, i)
        if not settings.keep_files:
            yield from delete_files(batch)
    bar.update(len(texts) - bar.n)
    return [r for r in results if r is not None]


def _clock(retry: RetryPolicy | None) -> Callable[[], float]:
    """The clock deadlines are read from: the policy's (tests inject one), else monotonic."""
    return (retry.clock if retry is not None else None) or time.monotonic


@contextmanager
def _prepared(
    texts: Sequence[TextInput],
    call: Call[ClientT],
    settings: BatchSettings,
    resolve: Callable[[ClientT | None, str], ClientT],
) -> Iterator[tuple[ClientT, Flow[list[ItemResult]]]]:
    """The checks and the flow :func:`run_batch` and :func:`arun_batch` share, with the
    client to run it on, inside the progress bar."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            "texts must be a sequence of texts, not a single string: pass [text] "
            "(or use classify() for one text)"
        )
    if settings.idempotency_key is not None:
        check_key(settings.idempotency_key)
    if settings.poll_interval <= 0:
        raise ValueError("poll_interval must be positive")
    items = list(texts)
    resolved, spec = prepare_call(call, resolve)
    with progress_bar(
        total=len(items), enabled=settings.progress, description=f"batch {call.model}", unit="text"
    ) as bar:
        yield resolved, batch_flow(spec, items, settings, clock=_clock(call.retry), bar=bar)


def classify_batch(
    texts: Sequence[TextInput],
    *,
    labels: LabelsInput,
    model: str,
    client: openai.OpenAI | None = None,
    retry: RetryPolicy | None = None,
    **options: Unpack[BatchKwargs],
) -> list[ItemResult]:
    """Classify many texts through the Batch API; results in input order.

    Blocks until every batch has ended (the service allows 24 hours). Each input file and
    batch is created exactly once, even when a reply is lost; calling again with the same
    texts and options (after a crash, a timeout, in a new process) picks up the batches
    already created instead of paying again. Polling waits use the retry policy's ``sleep``
    and its ``clock`` measures ``timeout`` (so tests inject both). ``labels``, ``model``,
    ``client`` and ``retry`` are those of :func:`~finetune_kit.classify`.

    Args:
        texts: the texts (strings or message lists); a single string is refused.
        **options: classify's options (each described at
            :class:`~finetune_kit.ClassifyOptions`) and the batch's own: ``poll_interval``,
            seconds between status checks (default 30); ``timeout``, stop waiting after this
            many seconds (default None: wait for the service's own 24 h window; the batches
            keep running, and a call with the same key picks them up); ``idempotency_key``,
            the key the batches carry (at most 512 characters; by default one derived from
            the requests (texts, labels, instructions, model, technique) and the endpoint:
            pass a new key to pay for a fresh batch of the same requests); ``keep_files``,
            keep the batches' input, output and error files on the account (by default they
            are deleted once the results are read); ``progress``, show a progress bar
            (default True).

    Returns:
        One :class:`~finetune_kit.Classification` or
        :class:`~finetune_kit.ClassificationError` per text, in input order: a request the
        service failed (or never ran: an expired or failed batch) holds a
        ``ClassificationError`` saying why, in its text's place.

    Raises:
        TypeError: ``texts`` is a single string, or an unknown keyword.
        TimeoutError: ``timeout`` passed with batches still running.
    """
    settings, rest = BatchSettings.split(options)
    return run_batch(
        texts, Call.of("classify_batch()", labels, model, client, retry, rest), settings
    )


def run_batch(
    texts: Sequence[TextInput], call: Call[openai.OpenAI], settings: BatchSettings
) -> list[ItemResult]:
    """:func:`classify_batch` with its call built (every sync batch entry point)."""
    with _prepared(texts, call, settings, sync_client) as (resolved, flow):
        return run_flow(flow, resolved, call.retry)


async def aclassify_batch(
    texts: Sequence[TextInput],
    *,
    labels: LabelsInput,
    model: str,
    client: openai.AsyncOpenAI | None = None,
    retry: RetryPolicy | None = None,
    **options: Unpack[BatchKwargs],
) -> list[ItemResult]:
    """The async sibling of :func:`classify_batch` (waits with the policy's ``async_sleep``)."""
    settings, rest = BatchSettings.split(options)
    return await arun_batch(
        texts, Call.of("aclassify_batch()", labels, model, client, retry, rest), settings
    )


async def arun_batch(
    texts: Sequence[TextInput], call: Call[openai.AsyncOpenAI], settings: BatchSettings
) -> list[ItemResult]:
    """The async sibling of :func:`run_batch`."""
    with _prepared(texts, call, settings, async_client) as (resolved, flow):
        return await arun_flow(flow, resolved, call.retry)
