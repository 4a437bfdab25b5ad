"""classify(): the answer is always one of the labels. The runners for one and many texts.

The technique ladder, chosen per model by what the endpoint accepts (docs/classification.md
describes it for users):

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

from typing import TYPE_CHECKING

from .._core.client import arun_flow, run_flow
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
from ._labels import LabelSet, LabelsInput, match_label, plan_keys
from ._ladder import Spec, chat_request, classify_steps, plan_off_loop, prepare_call
from ._many import (
    aclassify_many,
    arun_many,
    classify_many,
    finished_results,
    item_error,
    run_many,
)
from ._options import Call, ClassifyKwargs, ClassifyOptions, check_model, check_text
from ._prompts import ExamplesInput, Message, TextInput, user_turns
from ._results import Classification, ItemResult, Technique, TechniqueChoice, TokenUsage

if TYPE_CHECKING:
    import openai
    from typing_extensions import Unpack

    from .._core.retry import RetryPolicy


__all__ = [
    "Call",
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
    "aclassify_with",
    "arun_many",
    "async_client",
    "capability_key",
    "chat_request",
    "classify",
    "classify_many",
    "classify_steps",
    "classify_with",
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


# --- One text --------------------------------------------------------------------------------


def classify(
    text: TextInput,
    *,
    labels: LabelsInput,
    model: str,
    client: openai.OpenAI | None = None,
    retry: RetryPolicy | None = None,
    **options: Unpack[ClassifyKwargs],
) -> Classification:
    """Classify ``text`` into exactly one of ``labels``.

    Args:
        text: a string (sent as the user's message) or a list of chat messages.
        labels: a sequence of strings, an Enum class, or a mapping label -> description.
        model: the model (or Azure deployment) to ask.
        client: an ``openai.OpenAI`` (or ``AzureOpenAI``) client; omitted, one is built from
            ``OPENAI_*``. Read at every call: a rotated key or changed ``base_url`` applies.
        retry: how transient errors are retried (default :data:`DEFAULT_RETRY`).
        **options: how to classify: ``instructions``, ``examples``, ``technique``,
            ``abstain_below``, ``reasks``, ``base_model`` (each described at
            :class:`ClassifyOptions`).

    Returns:
        The :class:`Classification`.

    Raises:
        TypeError: an argument of the wrong type (e.g. an ``AsyncOpenAI`` client).
        ValueError: an argument with a wrong value (e.g. an empty text).
        ClassificationError: no label could be read from the answer (and ``abstain_below`` is
            None).
        openai.APIError: the request failed for another reason (after retries).
    """
    return classify_with(text, Call.of("classify()", labels, model, client, retry, options))


def classify_with(text: TextInput, call: Call[openai.OpenAI]) -> Classification:
    """:func:`classify` with its call built (every sync single-text entry point)."""
    check_text(text)
    resolved, spec = prepare_call(call, sync_client)
    return run_flow(classify_steps(spec, text), resolved, call.retry)


async def aclassify(
    text: TextInput,
    *,
    labels: LabelsInput,
    model: str,
    client: openai.AsyncOpenAI | None = None,
    retry: RetryPolicy | None = None,
    **options: Unpack[ClassifyKwargs],
) -> Classification:
    """The async sibling of :func:`classify` (same arguments, an ``AsyncOpenAI`` client)."""
    call = Call.of("aclassify()", labels, model, client, retry, options)
    return await aclassify_with(text, call)


async def aclassify_with(text: TextInput, call: Call[openai.AsyncOpenAI]) -> Classification:
    """The async sibling of :func:`classify_with`."""
    check_text(text)
    resolved, spec = prepare_call(call, async_client)
    await plan_off_loop(spec)
    return await arun_flow(classify_steps(spec, text), resolved, call.retry)
