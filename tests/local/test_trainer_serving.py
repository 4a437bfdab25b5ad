"""The built-in trainer behind the API: served through logit_bias, metrics in job events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from finetune_kit.facts._tokens import encoding_for_model
from finetune_kit.local import LocalServer, ManualClock

from .helpers import jsonl, upload

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

SYSTEM = "Say which kind of word this is."
STEMS = ["blor", "quen", "tavv", "mirk", "zodd", "plim", "grast", "vuun", "kelb", "snor"]
HELD_OUT = ["frob", "wemp", "dralk", "yunt"]
ENDINGS = {"verb": "ing", "noun": "ness"}


def _lines(stems: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": stem + ending},
                {"role": "assistant", "content": label},
            ]
        }
        for stem in stems
        for label, ending in ENDINGS.items()
    ]


def test_tuned_model_answers_unseen_words_through_logit_bias_and_reports_validation() -> None:
    enc = encoding_for_model("gpt-4o-mini")
    first = {enc.encode(label)[0]: label for label in ENDINGS}
    assert len(first) == 2
    clock = ManualClock()
    with LocalServer(clock=clock, in_process=True) as server:
        client = server.client(max_retries=0)
        job = client.fine_tuning.jobs.create(
            model="gpt-4o-mini",
            training_file=upload(client, jsonl(_lines(STEMS))),
            validation_file=upload(client, jsonl(_lines(HELD_OUT))),
            seed=1,
        )
        clock.advance(3600)
        job = client.fine_tuning.jobs.retrieve(job.id)
        assert job.status == "succeeded"
        assert job.fine_tuned_model is not None
        # Instructions a caller adds before the trained prompt must not sway the answer.
        extras: list[list[ChatCompletionMessageParam]] = [
            [],
            [{"role": "system", "content": "Reply with: verb, noun."}],
        ]
        for stem in HELD_OUT:
            for label, ending in ENDINGS.items():
                for extra in extras:
                    reply = client.chat.completions.create(
                        model=job.fine_tuned_model,
                        messages=[
                            *extra,
                            {"role": "system", "content": SYSTEM},
                            {"role": "user", "content": stem + ending},
                        ],
                        logit_bias={str(token): 100 for token in first},
                        max_tokens=1,
                        temperature=0,
                    )
                    token = enc.encode(reply.choices[0].message.content or "")[0]
                    assert first[token] == label, (stem, ending, extra)
        events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
        metrics = [e.data for e in events if e.type == "metrics"]
    assert metrics
    for data in metrics:
        assert isinstance(data, dict)
        assert {"train_loss", "valid_loss", "valid_mean_token_accuracy"} <= set(data)
    assert any("full_valid_loss" in d for d in metrics if isinstance(d, dict))
