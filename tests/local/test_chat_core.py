"""The pure pieces behind chat completions: prompt parsing, token-level generation, trainer."""

from __future__ import annotations

import math
import random

import pytest

from finetune_kit.facts._tokens import encoding_for_model
from finetune_kit.local import FaultRule, Faults, ManualClock
from finetune_kit.local._chat import (
    Candidate,
    enum_schema,
    find_aliases,
    find_listed_labels,
    generate,
)
from finetune_kit.local._trainer import (
    TrainingExample,
    base_scores,
    features,
    limit_examples,
    train,
)

ENC = encoding_for_model("gpt-4o-mini")


def test_manual_clock() -> None:
    import asyncio

    clock = ManualClock(100.0)
    assert clock() == 100.0
    clock.advance(1.5)
    clock.sleep(0.5)
    asyncio.run(clock.asleep(1.0))
    assert clock() == 103.0
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    assert repr(clock) == "ManualClock(103.000)"


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        (
            "Reply with only the letter of one label:\nA: spam (junk)\nB: ham",
            {"A": "spam", "B": "ham"},
        ),
        ("1) positive\n2) negative", {"1": "positive", "2": "negative"}),
        ("(a) yes\n(b) no", {"a": "yes", "b": "no"}),
        ("no aliases here", {}),
    ],
)
def test_find_aliases(prompt: str, expected: dict[str, str]) -> None:
    assert find_aliases(prompt) == expected


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Reply with only one of these labels: a, b, c", ["a", "b", "c"]),
        ("Labels:\n- spam: unwanted\n- ham: the rest", ["spam", "ham"]),
        ("Answer with one of: 'yes' or 'no'.", ["yes", "no"]),
        ("Tell me a story", []),
    ],
)
def test_find_listed_labels(prompt: str, expected: list[str]) -> None:
    assert find_listed_labels(prompt) == expected


def test_enum_schema() -> None:
    fmt = {
        "type": "json_schema",
        "json_schema": {"schema": {"properties": {"label": {"type": "string", "enum": ["a"]}}}},
    }
    assert enum_schema(fmt) == ("label", ["a"])
    assert enum_schema({"type": "json_object"}) is None
    assert enum_schema(None) is None


def _gen(
    cands: list[Candidate], *, bias: dict[int, float] | None = None, max_tokens: int | None = None
) -> tuple[str, str, list[float]]:
    out = generate(
        cands,
        enc=ENC,
        logit_bias=bias or {},
        max_tokens=max_tokens,
        temperature=0.0,
        rng=random.Random(0),
        top_logprobs=5,
    )
    return out.text, out.finish_reason, [c.logprob for c in out.tokens]


def test_generate_argmax_bias_ban_and_length() -> None:
    cands = [Candidate("positive", math.log(0.7)), Candidate("negative", math.log(0.3))]
    text, finish, logprobs = _gen(cands)
    assert (text, finish) == ("positive", "stop")
    assert logprobs[0] == pytest.approx(math.log(0.7))
    (neg,) = ENC.encode("negative")
    assert _gen(cands, bias={neg: 100})[0] == "negative"
    (pos,) = ENC.encode("positive")
    assert _gen(cands, bias={pos: -100})[0] == "negative"
    long = [Candidate("psychology", 0.0)]
    text, finish, _ = _gen(long, max_tokens=1)
    assert finish == "length"
    assert text == ENC.decode(ENC.encode("psychology")[:1])


def test_generate_shared_prefix_sums_probability() -> None:
    # "trivia" and "trout" share their first token ("tr"): it carries the sum of both.
    cands = [
        Candidate("trivia", math.log(0.4)),
        Candidate("trout", math.log(0.3)),
        Candidate("ai", math.log(0.3)),
    ]
    assert ENC.encode("trivia")[0] == ENC.encode("trout")[0]
    out = generate(
        cands,
        enc=ENC,
        logit_bias={},
        max_tokens=1,
        temperature=0,
        rng=random.Random(0),
        top_logprobs=3,
    )
    assert math.exp(out.tokens[0].logprob) == pytest.approx(0.7)


def test_generate_json_wrapping() -> None:
    out = generate(
        [Candidate("spam", 0.0)],
        enc=ENC,
        logit_bias={},
        max_tokens=None,
        temperature=0,
        rng=random.Random(0),
        json_property="label",
    )
    assert out.text == '{"label": "spam"}'


def test_trainer_learns_and_base_is_deterministic() -> None:
    data = [TrainingExample(f"please write {w} code", "coding") for w in ("python", "java", "c")]
    data += [TrainingExample(f"who was the {w} president", "trivia") for w in ("first", "last")]
    run = train(data, n_epochs=20, batch_size=1, seed=1)
    assert run.steps[-1].train_loss < run.steps[0].train_loss
    probs = dict(zip(run.model.answers, run.model.probabilities("write rust code"), strict=True))
    assert probs["coding"] > 0.8
    assert len(run.snapshots) == 20
    assert base_scores("q", ["a", "b"]) == base_scores("q", ["a", "b"])
    assert set(features("a b")) == {"a", "b", "a b", "<bias>"}


def test_faults_equality_ignores_counters() -> None:
    a = Faults([FaultRule("drop", first=1)])
    b = Faults([FaultRule("drop", first=1)])
    assert a.pick("GET", "/x") is not None
    assert a == b


def test_limit_examples_caps_answers_and_examples() -> None:
    examples = [TrainingExample(f"q{i}", f"a{i % 7}") for i in range(70)]
    examples += [TrainingExample("rare", "only-once")]
    kept, note = limit_examples(examples, seed=1, max_answers=7, max_examples=30)
    assert len(kept) == 30
    assert {ex.answer for ex in kept} <= {f"a{i}" for i in range(7)}
    assert note is not None
    assert "7 most frequent of 8" in note
    assert "30 of 70" in note
    assert kept == limit_examples(examples, seed=1, max_answers=7, max_examples=30)[0]
    assert limit_examples(examples, seed=1) == (examples, None)
