"""Token counting: the cookbook formula exactly, the model's encoding, tools and images."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finetune_kit import Dataset, FinetuneKitWarning
from finetune_kit.facts._tokens import (
    ESTIMATE_FACTOR,
    IMAGE_TOKENS_HIGH,
    IMAGE_TOKENS_LOW,
    TokenCounter,
    base_model_name,
    counter_for_model,
    encoding_name_for_model,
    get_encoding,
    num_tokens_from_messages,
    token_estimate_factor,
)

# A fixed corpus with hand-checked counts. Both encodings split these strings the same way:
#   "system" "user" "assistant" -> 1 token each
#   "You are terse."  -> You | are | terse | .           = 4
#   "Hello, world!"   -> Hello | , | world | !           = 4
#   "Hi."             -> Hi | .                          = 2
#   "Translate to French: cat" -> Translate|to|French|:|cat = 5
#   "chat", "Bob"     -> 1 each
# but "我爱你" is 3 tokens in o200k_base and 4 in cl100k_base (爱 is two byte-level tokens).
CORPUS: list[dict[str, Any]] = [
    {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hello, world!"},
            {"role": "assistant", "content": "Hi."},
        ]
    },  # 3 + (3+1+4) + (3+1+4) + (3+1+2) = 25; trained 2
    {
        "messages": [
            {"role": "user", "name": "Bob", "content": "我爱你"},
            {"role": "assistant", "content": "Hi."},
        ]
    },  # 3 + (3+1+1+1+3) + (3+1+2) = 18 in o200k (19 in cl100k); trained 2
    {
        "messages": [
            {"role": "user", "content": "Translate to French: cat"},
            {"role": "assistant", "content": "chat"},
        ]
    },  # 3 + (3+1+5) + (3+1+1) = 17; trained 1
]
EXPECTED_O200K = [25, 18, 17]
EXPECTED_CL100K = [25, 19, 17]


def cookbook_num_tokens(messages: list[dict[str, str]], encoding_name: str) -> int:
    """The OpenAI cookbook's num_tokens_from_messages, verbatim in logic."""
    encoding = get_encoding(encoding_name)
    num_tokens = 0
    for message in messages:
        num_tokens += 3
        for key, value in message.items():
            num_tokens += len(encoding.encode(value))
            if key == "name":
                num_tokens += 1
    num_tokens += 3
    return num_tokens


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt-4.1-mini", EXPECTED_O200K), ("gpt-3.5-turbo", EXPECTED_CL100K)],
)
def test_fixed_corpus_hand_checked(model: str, expected: list[int]) -> None:
    assert [num_tokens_from_messages(r["messages"], model=model) for r in CORPUS] == expected
    stats = Dataset.from_records(CORPUS).stats(model=model)
    assert stats.total_tokens == sum(expected)
    assert stats.assistant_tokens == 2 + 2 + 1
    assert stats.tokens_per_example.min == min(expected)
    assert stats.tokens_per_example.max == max(expected)
    assert stats.encoding == encoding_name_for_model(model)


plain_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(max_size=80)},
    optional={"name": st.from_regex(r"[A-Za-z0-9_-]{1,10}", fullmatch=True)},
)


@settings(max_examples=60, deadline=None)
@given(st.lists(plain_message, min_size=1, max_size=6))
def test_equals_cookbook_on_plain_chat(messages: list[dict[str, str]]) -> None:
    for encoding in ("o200k_base", "cl100k_base"):
        counter = TokenCounter(get_encoding(encoding))
        assert counter.messages(messages)[0] == cookbook_num_tokens(messages, encoding)


def test_tools_and_tool_calls_rule() -> None:
    counter = TokenCounter(get_encoding("o200k_base"))
    call = {
        "id": "call_1",  # call | _ | 1 = 3
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},  # 2 and 5
    }
    assistant = {"role": "assistant", "tool_calls": [call]}
    # 3 per message + role 1 + (3 per call + id 3 + name 2 + arguments 5)
    assert counter.message(assistant) == (3 + 1 + 13, 13)
    tool = {"role": "tool", "tool_call_id": "call_1", "content": "Hi."}
    assert counter.message(tool) == (3 + 1 + 3 + 2, 0)  # tool replies are not trained on
    tools = [{"type": "function", "function": {"name": "get_weather"}}]
    compact = json.dumps(tools, separators=(",", ":"))
    total, _ = counter.messages([assistant], tools=tools)
    assert total == 3 + 17 + len(get_encoding("o200k_base").encode(compact))


def test_image_parts_rule() -> None:
    counter = TokenCounter(get_encoding("o200k_base"))

    def user(detail: str | None) -> dict[str, Any]:
        image: dict[str, str] = {"url": "https://example.test/cat.png"}
        if detail:
            image["detail"] = detail
        parts = [
            {"type": "text", "text": "Hello, world!"},
            {"type": "image_url", "image_url": image},
        ]
        return {"role": "user", "content": parts}

    assert counter.message(user("low"))[0] == 3 + 1 + 4 + IMAGE_TOKENS_LOW
    assert counter.message(user("high"))[0] == 3 + 1 + 4 + IMAGE_TOKENS_HIGH
    assert counter.message(user(None))[0] == 3 + 1 + 4 + IMAGE_TOKENS_HIGH


def test_weight_zero_is_not_trained() -> None:
    counter = TokenCounter(get_encoding("o200k_base"))
    assert counter.message({"role": "assistant", "content": "Hi.", "weight": 0}) == (6, 0)
    assert counter.message({"role": "assistant", "content": "Hi.", "weight": 1}) == (6, 2)


def test_special_token_text_counts_as_ordinary_text() -> None:
    counter = TokenCounter(get_encoding("o200k_base"))
    assert counter.count("<|endoftext|>") > 1  # not the single special token


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4.1-mini", "o200k_base"),
        ("ft:gpt-4.1-mini-2025-04-14:org:suffix:abc123", "o200k_base"),
        ("ft:o4-mini-2025-04-16:org::abc", "o200k_base"),
        ("gpt-4o-2024-08-06", "o200k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("davinci-002", "cl100k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4.1-2025-04-14.ft-0123456789abcdef", "o200k_base"),  # an Azure fine-tuned id
        ("gpt-35-turbo-0125", "cl100k_base"),  # Azure's spelling
        ("gpt-35-turbo-0125.ft-abc", "cl100k_base"),
        ("gpt-oss-20b", "o200k_harmony"),
        ("ft:gpt-oss-20b:org::abc", "o200k_harmony"),
    ],
)
def test_model_encodings(model: str, encoding: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert encoding_name_for_model(model) == encoding


def test_unknown_model_warns_and_uses_o200k() -> None:
    with pytest.warns(FinetuneKitWarning, match="my-azure-deployment-x1"):
        stats = Dataset.from_records(CORPUS).stats(model="my-azure-deployment-x1")
    assert stats.encoding == "o200k_base"
    assert stats.total_tokens == sum(EXPECTED_O200K)


def test_cache_does_not_change_counts() -> None:
    counter = TokenCounter(get_encoding("o200k_base"))
    texts = [f"label {i % 7}" for i in range(10_000)] + ["x" * 200] * 3
    assert [counter.count(t) for t in texts] == [
        len(get_encoding("o200k_base").encode_ordinary(t)) for t in texts
    ]


@pytest.mark.parametrize(
    ("model", "base"),
    [
        ("gpt-4.1-2025-04-14.ft-0123456789abcdef", "gpt-4.1"),
        ("gpt-4o-mini-2024-07-18.ft-abc_DEF-1", "gpt-4o-mini"),
        ("gpt-35-turbo-0125", "gpt-3.5-turbo"),
        ("ft:gpt-4.1-mini-2025-04-14:org:suffix:abc123:ckpt-step-10", "gpt-4.1-mini"),
        ("my-deployment", "my-deployment"),
    ],
)
def test_base_model_names_cover_azure_spellings(model: str, base: str) -> None:
    assert base_model_name(model) == base


def test_o200k_harmony_is_o200k_base_plus_the_harmony_tokens() -> None:
    harmony, base = get_encoding("o200k_harmony"), get_encoding("o200k_base")
    text = "Hello, world! 我爱你 <|start|> plain"
    assert harmony.encode_ordinary(text) == base.encode_ordinary(text)
    assert harmony.encode("<|start|>assistant<|message|>hi<|end|>", allowed_special="all")[::2] == [
        200006,
        200008,
        200007,
    ]
    assert harmony.encode("<|call|>", allowed_special="all") == [200012]
    assert harmony.n_vocab == 201_088
    assert harmony.name == "o200k_harmony"


@pytest.mark.parametrize(
    "model", ["Llama-3.3-70B-Instruct", "qwen-32b", "Ministral-3B", "ft:llama-3.3-70b:org::x"]
)
def test_models_without_a_shipped_tokenizer_are_estimated_with_a_warning(model: str) -> None:
    assert token_estimate_factor(model) == ESTIMATE_FACTOR
    messages = [{"role": "user", "content": "Translate to French: cat " * 20}]
    exact = num_tokens_from_messages(messages, model="gpt-4o")
    with pytest.warns(FinetuneKitWarning, match=r"estimated as o200k_base tokens x 1\.2"):
        estimated = num_tokens_from_messages(messages, model=model)
    # Each string's count (role and content) is scaled and rounded up; the overheads are not.
    encode = get_encoding("o200k_base").encode_ordinary
    sizes = [len(encode(value)) for value in messages[0].values()]
    assert estimated - exact == sum(math.ceil(n * ESTIMATE_FACTOR) - n for n in sizes)
    assert estimated > exact


def test_exactly_counted_models_are_not_estimated() -> None:
    for model in ("gpt-4o", "gpt-oss-20b", "gpt-3.5-turbo"):
        assert token_estimate_factor(model) is None
        assert counter_for_model(model).factor == 1.0


@pytest.mark.parametrize("factor", [0.0, -1.0, float("nan"), float("inf")])
def test_counter_rejects_a_meaningless_factor(factor: float) -> None:
    with pytest.raises(ValueError, match="factor"):
        TokenCounter(get_encoding("o200k_base"), factor=factor)
