"""TunedModel / AsyncTunedModel: a handle on a (fine-tuned) model, usable without any job.

A handle is only a name and a client: building one makes no request, so handles for a job's
result, each of its checkpoints and the base model cost nothing until used. Every method is
written once (a flow of ``_client.py``, or one call with the runner each class picks) and
shared by the sync and the async class.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypedDict

import openai

from .._core.client import Request, arun_flow, run_flow
from .._core.keywords import check_keywords
from .._core.session import facts_for
from ..classification import _batch, _classify
from ..classification._batch import BatchKwargs, BatchSettings
from ..classification._capabilities import client_type_error
from ..classification._many import ClassifyManyKwargs, ManySettings
from ..classification._options import (
    Call,
    ClassifyKwargs,
    ClassifyOptions,
    ClientT,
    check_model,
)
from ..evaluate import Evaluation, evaluation_items
from ._deploy import AsyncDeployMixin, DeployMixin
from ._keywords import ModelOrigin

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Mapping, Sequence

    from openai.types import Model, ModelDeleted
    from openai.types.chat import ChatCompletion
    from typing_extensions import Self, Unpack

    from .._core.client import Flow
    from .._core.retry import RetryPolicy
    from ..classification._capabilities import CapabilityKey
    from ..classification._classify import (
        Classification,
        ItemResult,
        LabelsInput,
        TextInput,
    )
    from ._deployments import Deployment

__all__ = ["AsyncTunedModel", "TunedModel"]

logger = logging.getLogger("finetune_kit")

# --- Flows shared by both classes ------------------------------------------------------------


class ChatKwargs(TypedDict, total=False):
    """The keywords of :meth:`TunedModel.chat` besides the messages and ``retry`` (described
    there); both classes take them as ``**options: Unpack[ChatKwargs]``."""

    instructions: str | None
    temperature: float | None
    max_tokens: int | None
    extra_body: Mapping[str, object] | None


def _chat_flow(name: str, key: CapabilityKey, text: TextInput, options: ChatKwargs) -> Flow[str]:
    messages: list[dict[str, Any]] = []
    instructions = options.get("instructions")
    if instructions:
        messages.append({"role": "system", "content": instructions})
    messages.extend(_classify.user_turns(text))
    body: dict[str, Any] = {"model": name, "messages": messages}
    temperature = options.get("temperature")
    if temperature is not None:
        body["temperature"] = temperature
    extra_body = options.get("extra_body")
    if extra_body:
        body["extra_body"] = dict(extra_body)
    max_tokens = options.get("max_tokens")
    while True:
        if max_tokens is not None:
            # The same memory as classify(): a model that refused max_tokens gets the new name.
            refused = _classify.known_refusals(key)
            body.pop("max_tokens", None)
            body["max_completion_tokens" if "max_tokens" in refused else "max_tokens"] = max_tokens
        try:
            completion: ChatCompletion = yield _classify.chat_request(body, f"chat with {name}")
        except openai.BadRequestError as exc:
            if max_tokens is None or _classify.refused_parameter(exc, body) != "max_tokens":
                raise
            _classify.remember_refusal(key, "max_tokens")
            continue
        message = completion.choices[0].message if completion.choices else None
        if message is None:
            return ""
        return message.content if message.content is not None else (message.refusal or "")


def _retrieve_flow(name: str) -> Flow[Model]:
    model: Model = yield Request(f"retrieve model {name}", lambda c: c.models.retrieve(name))
    return model


def _delete_flow(name: str) -> Flow[bool]:
    deleted: ModelDeleted = yield Request(f"delete model {name}", lambda c: c.models.delete(name))
    return bool(deleted.deleted)


def shutdown_date_of(model: Model) -> dt.date | None:
    """The ``shutdown_date`` the models endpoint gave, or None when it gave none.

    Older SDKs do not declare the field: it is then read from the response's extra fields.
    Accepts an ISO date or datetime string, or a UNIX timestamp.
    """
    value = getattr(model, "shutdown_date", None)
    if value is None:
        value = (model.model_extra or {}).get("shutdown_date")
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc).date()
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # unreadable: logged below
            return dt.date.fromisoformat(value.strip()[:10])
    logger.debug("unreadable shutdown_date %r for %s", value, model.id)
    return None


@dataclass(frozen=True)
class _HeldOut:
    """An evaluation's texts, its call (checked), and the true labels to score against."""

    texts: list[TextInput]
    call: Call[Any]
    golds: list[str]

    def score(self, results: list[ItemResult]) -> Evaluation:
        names = _classify.LabelSet.of(self.call.labels).names
        return Evaluation.from_predictions(
            self.golds, results, labels=names, model=self.call.model, inputs=self.texts
        )


class _ModelHandle(Generic[ClientT]):
    """What both model classes hold: the name, where it came from, and the client to use.

    Every method that talks to the service is written once, here: as a flow each class runs
    with its own client, or as the one ``Call`` each class hands to its runner
    (``run_many`` or ``arun_many``, ...).
    """

    _client_type: type[ClientT]

    def __init__(
        self, name: str, *, client: ClientT | None = None, **origin: Unpack[ModelOrigin]
    ) -> None:
        check_model(name, "name")
        check_keywords(f"{type(self).__name__}()", origin, ModelOrigin.__annotations__)
        if client is not None and not isinstance(client, self._client_type):
            raise client_type_error(f"{type(self).__name__}()", self._client_type.__name__, client)
        self.name = name
        self.job_id = origin.get("job_id")
        self.base_model = origin.get("base_model")
        self.checkpoint_step = origin.get("checkpoint_step")
        self.deployment = origin.get("deployment")
        self._client: ClientT | None = client

    @property
    def origin(self) -> ModelOrigin:
        """Where the model came from, as one value (a new dict): ``job_id``, ``base_model``,
        ``checkpoint_step`` and ``deployment``, each None when unknown."""
        return ModelOrigin(
            job_id=self.job_id,
            base_model=self.base_model,
            checkpoint_step=self.checkpoint_step,
            deployment=self.deployment,
        )

    @property
    def model_id(self) -> str:
        """The model's own id: ``name``, unless ``name`` is an Azure deployment of it."""
        return self.deployment.model if self.deployment is not None else self.name

    def _deployed(self, deployment: Deployment) -> Self:
        # The same client and provenance; the deployment name is what the data plane takes.
        origin = self.origin
        origin.update({"base_model": self.base_model or self.model_id, "deployment": deployment})
        return type(self)(deployment.name, client=self._client, **origin)

    def _fallback_date(self, client: openai.OpenAI | openai.AsyncOpenAI) -> dt.date | None:
        # The endpoint's own facts (Azure's dates for Azure), never another endpoint's.
        return facts_for(client, self.model_id, base_model=self.base_model).shutdown_date

    def _where(self, method: str) -> str:
        return f"{type(self).__name__}.{method}()"

    def _chat(
        self, client: openai.OpenAI | openai.AsyncOpenAI, text: TextInput, options: ChatKwargs
    ) -> Flow[str]:
        check_keywords(self._where("chat"), options, ChatKwargs.__annotations__)
        return _chat_flow(self.name, _classify.capability_key(client, self.name), text, options)

    def _classify_options(self, method: str, options: ClassifyKwargs) -> ClassifyOptions:
        # The handle knows its base model (the token encoding); a call may still name another.
        return ClassifyOptions.from_kwargs(
            self._where(method), {"base_model": self.base_model, **options}
        )

    def _call(
        self, method: str, labels: LabelsInput, retry: RetryPolicy | None, options: ClassifyKwargs
    ) -> Call[ClientT]:
        checked = self._classify_options(method, options)
        return Call(self._where(method), labels, self.name, self._client, retry, checked)

    def _held_out(
        self,
        data: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
        labels: LabelsInput | None,
        retry: RetryPolicy | None,
        options: ClassifyKwargs,
    ) -> _HeldOut:
        checked = self._classify_options("evaluate", options)
        if checked.examples and checked.instructions is None:
            # Without instructions each example is sent as trained: the shots would be lost.
            raise ValueError(
                f"{self._where('evaluate')}: examples need instructions= (without them each "
                "example is sent exactly as in the data, with no few-shot turns)"
            )
        items = evaluation_items(data)
        golds = [gold for _, gold in items]
        call = Call(
            self._where("evaluate"),
            labels or list(dict.fromkeys(golds)),
            self.name,
            self._client,
            retry,
            checked,
            # Without instructions, each example is sent exactly as in the data (as trained).
            as_trained=checked.instructions is None,
        )
        return _HeldOut([conversation for conversation, _ in items], call, golds)

    def __repr__(self) -> str:
        extra = f", job_id={self.job_id!r}" if self.job_id else ""
        if self.deployment is not None:
            extra += f", model_id={self.model_id!r}"
        if self.checkpoint_step is not None:
            extra += f", checkpoint_step={self.checkpoint_step}"
        return f"{type(self).__name__}({self.name!r}{extra})"


# --- The classes -----------------------------------------------------------------------------


class TunedModel(_ModelHandle[openai.OpenAI], DeployMixin):
    """A model to use and evaluate: a job's result, one of its checkpoints, or any name.

    Args:
        name: the model id, e.g. ``ft:gpt-4.1-mini:org:suffix:id`` or ``...:ckpt-step-88``.
        client: the client to call it through; omitted, one is built from ``OPENAI_*`` on
            first use.
        **origin: where it came from, each None when unknown: ``job_id``, the job that
            produced it; ``base_model``, the model it was tuned from (it also tells classify()
            the token encoding when ``name`` does not, e.g. for an Azure deployment);
            ``checkpoint_step``, the step of the checkpoint this model is; ``deployment``, the
            Azure deployment ``name`` is (see :meth:`deploy`).

    Raises:
        TypeError: an unknown keyword, or a client of the wrong kind.
    """

    _client_type = openai.OpenAI

    def _api(self) -> openai.OpenAI:
        return _classify.sync_client(self._client, "TunedModel")

    def chat(
        self,
        text_or_messages: TextInput,
        *,
        retry: RetryPolicy | None = None,
        **options: Unpack[ChatKwargs],
    ) -> str:
        """The model's reply to a string (as the user's message) or to a conversation.

        Args:
            text_or_messages: a string or a list of chat messages.
            retry: how transient errors are retried.
            **options: ``instructions``: a system message put first; ``temperature``:
                sampling temperature (the model's default when None); ``max_tokens``: cap on
                the reply, sent as ``max_completion_tokens`` to models that refuse
                ``max_tokens``; ``extra_body``: any other request parameters (``seed``,
                ``top_p``, ...), sent as is.

        Returns:
            The reply's text (a refusal's text when the model refused; ``""`` when empty).

        Raises:
            TypeError: an unknown keyword.
        """
        client = self._api()
        return run_flow(self._chat(client, text_or_messages, options), client, retry)

    def classify(
        self,
        text: TextInput,
        *,
        labels: LabelsInput,
        retry: RetryPolicy | None = None,
        **options: Unpack[ClassifyKwargs],
    ) -> Classification:
        """:func:`~finetune_kit.classify` with this model (see there for the arguments).

        ``base_model`` defaults to the handle's.
        """
        return _classify.classify_with(text, self._call("classify", labels, retry, options))

    def classify_many(
        self,
        texts: Sequence[TextInput],
        *,
        labels: LabelsInput,
        retry: RetryPolicy | None = None,
        **options: Unpack[ClassifyManyKwargs],
    ) -> list[ItemResult]:
        """:func:`~finetune_kit.classify_many` with this model (see there)."""
        settings, rest = ManySettings.split(options)
        call = self._call("classify_many", labels, retry, rest)
        return _classify.run_many(texts, call, settings)

    def classify_batch(
        self,
        texts: Sequence[TextInput],
        *,
        labels: LabelsInput,
        retry: RetryPolicy | None = None,
        **options: Unpack[BatchKwargs],
    ) -> list[ItemResult]:
        """:func:`~finetune_kit.classify_batch` with this model (see there)."""
        settings, rest = BatchSettings.split(options)
        call = self._call("classify_batch", labels, retry, rest)
        return _batch.run_batch(texts, call, settings)

    def evaluate(
        self,
        dataset: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
        *,
        labels: LabelsInput | None = None,
        retry: RetryPolicy | None = None,
        **options: Unpack[ClassifyManyKwargs],
    ) -> Evaluation:
        """Classify a labelled held-out set and score the answers.

        Each example's conversation is sent exactly as in the data, minus the final answer:
        the model is asked what it was trained on. The label restriction rides on
        ``logit_bias`` (or structured output); only when the endpoint allows neither are the
        labels listed in the prompt (``Evaluation.technique`` says which was used).

        Args:
            dataset: a JSONL path, a :class:`~finetune_kit.Dataset` or dicts: chat examples
                ending with the assistant's label, or ``{"text", "label"}`` records.
            labels: the label set; default: the true labels found, in order of appearance.
            retry: how transient errors are retried.
            **options: as :meth:`classify_many`'s (``concurrency``, ``progress`` and
                classify's options); ``instructions`` replaces the data's own prompt with
                classify's system prompt, these instructions and the label list (zero-shot
                use of a base model), and only then may ``examples`` add shots.

        Raises:
            ValueError: ``examples`` without ``instructions``.
        """
        settings, rest = ManySettings.split(options)
        held_out = self._held_out(dataset, labels, retry, rest)
        return held_out.score(_classify.run_many(held_out.texts, held_out.call, settings))

    def shutdown_date(self, *, retry: RetryPolicy | None = None) -> dt.date | None:
        """When the service retires this model: the models endpoint's date, else the facts of
        the client's endpoint (Azure's dates for an Azure client); None when unknown.

        Raises:
            openai.NotFoundError: no such model at this endpoint.
        """
        client = self._api()
        found = shutdown_date_of(run_flow(_retrieve_flow(self.name), client, retry))
        return found or self._fallback_date(client)

    def delete(self, *, retry: RetryPolicy | None = None) -> bool:
        """Delete this fine-tuned model from the organisation; True when the service did.

        Raises:
            openai.NotFoundError: no such model (or it is not yours to delete).
        """
        return run_flow(_delete_flow(self.name), self._api(), retry)


class AsyncTunedModel(_ModelHandle[openai.AsyncOpenAI], AsyncDeployMixin):
    """The async sibling of :class:`TunedModel` (same constructor, coroutine methods)."""

    _client_type = openai.AsyncOpenAI

    def _api(self) -> openai.AsyncOpenAI:
        return _classify.async_client(self._client, "AsyncTunedModel")

    async def chat(
        self,
        text_or_messages: TextInput,
        *,
        retry: RetryPolicy | None = None,
        **options: Unpack[ChatKwargs],
    ) -> str:
        """See :meth:`TunedModel.chat`."""
        client = self._api()
        return await arun_flow(self._chat(client, text_or_messages, options), client, retry)

    async def classify(
        self,
        text: TextInput,
        *,
        labels: LabelsInput,
        retry: RetryPolicy | None = None,
        **options: Unpack[ClassifyKwargs],
    ) -> Classification:
        """See :meth:`TunedModel.classify`."""
        call = self._call("classify", labels, retry, options)
        return await _classify.aclassify_with(text, call)

    async def classify_many(
        self,
        texts: Sequence[TextInput],
        *,
        labels: LabelsInput,
        retry: RetryPolicy | None = None,
        **options: Unpack[ClassifyManyKwargs],
    ) -> list[ItemResult]:
        """See :meth:`TunedModel.classify_many`."""
        settings, rest = ManySettings.split(options)
        call = self._call("classify_many", labels, retry, rest)
        return await _classify.arun_many(texts, call, settings)

    async def classify_batch(
        self,
        texts: Sequence[TextInput],
        *,
        labels: LabelsInput,
        retry: RetryPolicy | None = None,
        **options: Unpack[BatchKwargs],
    ) -> list[ItemResult]:
        """See :meth:`TunedModel.classify_batch`."""
        settings, rest = BatchSettings.split(options)
        call = self._call("classify_batch", labels, retry, rest)
        return await _batch.arun_batch(texts, call, settings)

    async def evaluate(
        self,
        dataset: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
        *,
        labels: LabelsInput | None = None,
        retry: RetryPolicy | None = None,
        **options: Unpack[ClassifyManyKwargs],
    ) -> Evaluation:
        """See :meth:`TunedModel.evaluate`."""
        settings, rest = ManySettings.split(options)
        held_out = self._held_out(dataset, labels, retry, rest)
        return held_out.score(await _classify.arun_many(held_out.texts, held_out.call, settings))

    async def shutdown_date(self, *, retry: RetryPolicy | None = None) -> dt.date | None:
        """See :meth:`TunedModel.shutdown_date`."""
        client = self._api()
        found = shutdown_date_of(await arun_flow(_retrieve_flow(self.name), client, retry))
        return found or self._fallback_date(client)

    async def delete(self, *, retry: RetryPolicy | None = None) -> bool:
        """See :meth:`TunedModel.delete`."""
        return await arun_flow(_delete_flow(self.name), self._api(), retry)
