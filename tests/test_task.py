"""ClassificationTask's calls: the options they take, checked at the call."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

import pytest

from finetune_kit import ClassificationError, ClassificationTask, RetryPolicy

from .fake_openai import ok

if TYPE_CHECKING:
    import openai
    import respx

MODEL = "gpt-4o-mini"
LABELS = ["billing", "bug"]

pytestmark = pytest.mark.usefixtures("fresh_capabilities")


def _first(method: str) -> Any:
    if method.endswith("evaluate"):
        return [{"text": "I was charged twice", "label": "billing"}]
    return ["I was charged twice"] if method.endswith("_many") else "I was charged twice"


def _run(value: object) -> object:
    """Await a coroutine on a fresh loop (the async methods check when awaited)."""
    return asyncio.run(value) if asyncio.iscoroutine(value) else value


@pytest.mark.parametrize(
    "method", ["classify", "aclassify", "classify_many", "aclassify_many", "evaluate", "aevaluate"]
)
@pytest.mark.parametrize("keyword", ["instructions", "examples", "tempo"])
def test_keywords_the_task_replaces_or_lacks_name_the_method(
    api: respx.Router,
    client: openai.OpenAI,
    async_client: openai.AsyncOpenAI,
    method: str,
    keyword: str,
) -> None:
    # The task's prompt takes the place of instructions and examples: they are not options.
    route = api.route().respond(500)
    task = ClassificationTask(LABELS, instructions="Route the ticket.")
    chosen = async_client if method.startswith("a") else client
    where = re.escape(f"ClassificationTask.{method}()")

    with pytest.raises(TypeError, match=rf"^{where} got an unexpected keyword .*'{keyword}'"):
        _run(getattr(task, method)(_first(method), model=MODEL, client=chosen, **{keyword: None}))

    assert not route.called


def test_evaluate_takes_reasks(api: respx.Router, client: openai.OpenAI) -> None:
    route = api.post("/chat/completions").mock(return_value=ok("neither"))
    task = ClassificationTask(LABELS)

    evaluation = task.evaluate(
        _first("evaluate"),
        model=MODEL,
        client=client,
        technique="prompt",
        reasks=0,
        retry=RetryPolicy(sleep=lambda _: None),
        progress=False,
    )

    assert route.call_count == 1  # no re-ask after the answer that is no label
    assert evaluation.accuracy == 0.0
    assert isinstance(
        task.classify_many(
            ["x"], model=MODEL, client=client, technique="prompt", reasks=0, progress=False
        )[0],
        ClassificationError,
    )
