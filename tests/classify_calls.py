"""The many-texts and batch entry points called with what their tests share.

The fake's labels (``fake_openai.LABELS``), one model and no progress bar; a test passes what
it is about (the texts, ``technique``, ``retry``, ``concurrency``, ...) and may override any
of the shared keywords.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from finetune_kit import aclassify_batch, aclassify_many, classify_batch, classify_many

from .fake_openai import LABELS

if TYPE_CHECKING:
    from collections.abc import Sequence

    import openai

    from finetune_kit.classification._classify import ItemResult, TextInput

MODEL = "gpt-4o-mini"


def _shared(client: object, options: dict[str, Any]) -> dict[str, Any]:
    return {"labels": list(LABELS), "model": MODEL, "client": client, "progress": False, **options}


def many(client: openai.OpenAI, texts: Sequence[TextInput], **options: Any) -> list[ItemResult]:
    """:func:`~finetune_kit.classify_many` with the shared keywords."""
    found: list[ItemResult] = classify_many(texts, **_shared(client, options))
    return found


async def amany(
    client: openai.AsyncOpenAI, texts: Sequence[TextInput], **options: Any
) -> list[ItemResult]:
    """:func:`~finetune_kit.aclassify_many` with the shared keywords."""
    found: list[ItemResult] = await aclassify_many(texts, **_shared(client, options))
    return found


def batch(client: openai.OpenAI, texts: Sequence[TextInput], **options: Any) -> list[ItemResult]:
    """:func:`~finetune_kit.classify_batch` with the shared keywords."""
    return classify_batch(texts, **_shared(client, options))


async def abatch(
    client: openai.AsyncOpenAI, texts: Sequence[TextInput], **options: Any
) -> list[ItemResult]:
    """:func:`~finetune_kit.aclassify_batch` with the shared keywords."""
    return await aclassify_batch(texts, **_shared(client, options))
