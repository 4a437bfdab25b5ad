"""Token encodings: which one a model uses, and loading it without a network.

tiktoken downloads its rank files on first use. Many machines that fine-tune have no internet
(air-gapped hosts, locked-down CI), so the package ships gzip copies of the two encodings chat
models use (``finetune_kit/data/*.tiktoken.gz``, byte-for-byte tiktoken's files). Loading order:

1. tiktoken's own cache, when it already holds the file (no network involved);
2. the shipped copy, checked against tiktoken's expected sha256;
3. tiktoken's normal loader (which may download), for encodings we do not ship;

and :class:`~finetune_kit.TokenizerError` naming what was tried when none works.

Nothing is loaded at import time: encodings are built on first use and cached per process.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import re
import tempfile
import threading
import warnings
from importlib import resources
from typing import TYPE_CHECKING, Final, Literal

from .._exceptions import TokenizerError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence, Sized

    import tiktoken

__all__ = [
    "ESTIMATE_FACTOR",
    "IMAGE_TOKENS_HIGH",
    "IMAGE_TOKENS_LOW",
    "REPLY_PRIMING",
    "SPECIAL_TOKENS",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "TOKENS_PER_TOOL_CALL",
    "EncodingName",
    "FinetuneKitWarning",
    "TokenCounter",
    "base_model_name",
    "counter_for_model",
    "encoding_for_model",
    "encoding_name_for_model",
    "get_encoding",
    "num_tokens_from_messages",
    "token_estimate_factor",
]

EncodingName = Literal["o200k_base", "cl100k_base", "o200k_harmony"]


class FinetuneKitWarning(UserWarning):
    """Something worth a look, not an error (e.g. an unknown model name, a retiring base)."""


_ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"

# Copied facts from tiktoken_ext/openai_public.py: the split patterns, the special tokens and
# the expected hashes of the rank files. They are part of each encoding's definition.
_URLS: Final = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}
_SHA256: Final = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
_PATTERNS: Final = {
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}
_SPECIAL: Final[dict[str, dict[str, int]]] = {
    "cl100k_base": {
        _ENDOFTEXT: 100257,
        _FIM_PREFIX: 100258,
        _FIM_MIDDLE: 100259,
        _FIM_SUFFIX: 100260,
        _ENDOFPROMPT: 100276,
    },
    "o200k_base": {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
}
# o200k_harmony (gpt-oss) is o200k_base's ranks and pattern plus the harmony chat format's
# special tokens (tiktoken_ext/openai_public.py: o200k_harmony), so it is built offline from
# the shipped o200k_base file.
_HARMONY_SPECIAL: Final[dict[str, int]] = {
    **_SPECIAL["o200k_base"],
    "<|startoftext|>": 199998,
    "<|return|>": 200002,
    "<|constrain|>": 200003,
    "<|channel|>": 200005,
    "<|start|>": 200006,
    "<|end|>": 200007,
    "<|message|>": 200008,
    "<|call|>": 200012,
} | {
    f"<|reserved_{i}|>": i
    for i in (200000, 200001, 200004, 200009, 200010, 200011, *range(200013, 201088))
}
# Encodings derived from a shipped one: name -> (ranks and pattern from, special tokens).
_DERIVED: Final[dict[str, tuple[str, dict[str, int]]]] = {
    "o200k_harmony": ("o200k_base", _HARMONY_SPECIAL)
}

# Model name prefixes -> encoding. Longest prefix wins, so "gpt-4o" beats "gpt-4".
_PREFIXES: Final[dict[str, EncodingName]] = {
    "gpt-4o": "o200k_base",
    "chatgpt-4o": "o200k_base",
    "gpt-4.1": "o200k_base",
    "gpt-4.5": "o200k_base",
    "gpt-5": "o200k_base",
    "gpt-oss": "o200k_harmony",
    "o1": "o200k_base",
    "o3": "o200k_base",
    "o4": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-3.5": "cl100k_base",
    "gpt-35": "cl100k_base",  # Azure spells gpt-3.5 without the dot
    "davinci-002": "cl100k_base",
    "babbage-002": "cl100k_base",
    "text-embedding-3": "cl100k_base",
    "text-embedding-ada-002": "cl100k_base",
}
_SORTED_PREFIXES: Final = sorted(_PREFIXES, key=len, reverse=True)
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4})$")
# Azure names a fine-tuned model "<base>-<date>.ft-<id>" (e.g. gpt-4.1-2025-04-14.ft-abc123).
_AZURE_FT_SUFFIX = re.compile(r"\.ft-[0-9a-z_-]*$")
# Azure spells gpt-3.5 without the dot; the catalogue knows it by OpenAI's name.
_ALIASES: Final = {"gpt-35-turbo": "gpt-3.5-turbo"}

#: Models whose tokenizer cannot ship with us (licence, size): counted as o200k_base tokens
#: times this factor, with a warning. Their vocabularies (Llama 3: 128k, Qwen 2.5: 152k,
#: Ministral's Tekken: 131k) split English text within about 20% of o200k_base's count; the
#: factor errs upwards so that cost estimates stay upper bounds.
ESTIMATE_FACTOR: Final = 1.2
_ESTIMATED_PREFIXES: Final = ("llama", "meta-llama", "qwen", "ministral", "mistral")

_lock = threading.RLock()  # re-entrant: a derived encoding loads its source inside
_cache: dict[str, tiktoken.Encoding] = {}
_warned: set[str] = set()


def base_model_name(model: str) -> str:
    """The base model a (possibly fine-tuned, dated or checkpoint) model name stands on.

    ``ft:gpt-4.1-mini-2025-04-14:org:suffix:id`` -> ``gpt-4.1-mini``; ``gpt-4o-2024-08-06`` ->
    ``gpt-4o``; names we do not recognise come back lower-cased and otherwise unchanged.
    """
    name = model.strip().lower()
    if name.startswith("ft:"):
        name = name[3:].split(":", 1)[0]
    name = _DATE_SUFFIX.sub("", _AZURE_FT_SUFFIX.sub("", name))
    return _ALIASES.get(name, name)


def token_estimate_factor(model: str) -> float | None:
    """The factor by which ``model``'s tokens are estimated from o200k_base, or None if exact.

    Models whose tokenizer does not ship with us (Llama, Qwen, Ministral) are counted as
    o200k_base tokens times :data:`ESTIMATE_FACTOR` (stated error: about 20%, erring high).
    """
    base = base_model_name(model)
    return ESTIMATE_FACTOR if base.startswith(_ESTIMATED_PREFIXES) else None


def _lookup(model: str) -> EncodingName | None:
    base = base_model_name(model)
    for prefix in _SORTED_PREFIXES:
        if base == prefix or base.startswith((prefix + "-", prefix + ".")):
            return _PREFIXES[prefix]
    return None


def encoding_name_for_model(model: str, *, warn: bool = True) -> EncodingName:
    """The encoding ``model`` uses; unknown names (e.g. Azure deployments) get o200k_base.

    An unknown name is reported once per process with a :class:`FinetuneKitWarning`, because a
    wrong encoding silently skews token counts and the token ids classify() biases. So is a
    model whose tokens are only estimated (see :func:`token_estimate_factor`).
    """
    found = _lookup(model)
    if found is not None:
        return found
    factor = token_estimate_factor(model)
    if warn and model not in _warned:
        _warned.add(model)
        if factor is not None:
            message = (
                f"{model!r} uses its own tokenizer, which finetune-kit does not ship: its "
                f"tokens are estimated as o200k_base tokens x {factor:g} (expect an error of "
                "about 20%, erring high)."
            )
        else:
            message = (
                f"Unknown model name {model!r}: counting tokens with o200k_base, the encoding "
                "of current chat models. Pass the base model's name (e.g. 'gpt-4.1-mini', or "
                "base_model= for an Azure deployment) if this is a deployment alias."
            )
        warnings.warn(message, FinetuneKitWarning, stacklevel=3)
    return "o200k_base"


def encoding_for_model(model: str) -> tiktoken.Encoding:
    """The loaded encoding for ``model`` (see :func:`encoding_name_for_model`)."""
    return get_encoding(encoding_name_for_model(model))


def get_encoding(name: str) -> tiktoken.Encoding:
    """Load (once per process) the encoding called ``name``, offline when possible."""
    enc = _cache.get(name)
    if enc is not None:
        return enc
    with _lock:
        enc = _cache.get(name)
        if enc is None:
            enc = _load(name)
            _cache[name] = enc
        return enc


def counter_for_model(model: str | None) -> TokenCounter:
    """A :class:`TokenCounter` for ``model``: its encoding, or a stated estimate (warned about).

    ``None`` counts in o200k_base.
    """
    if model is None:
        return TokenCounter(get_encoding("o200k_base"))
    encoding = get_encoding(encoding_name_for_model(model))
    return TokenCounter(encoding, factor=token_estimate_factor(model) or 1.0)


def _tiktoken_cache_file(name: str) -> str | None:
    url = _URLS.get(name)
    if url is None:
        return None
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    if cache_dir is None:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")  # noqa: PTH118
    if not cache_dir:  # tiktoken treats an empty value as "caching off"
        return None
    return os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())  # noqa: PTH118


def _shipped_ranks(name: str) -> dict[bytes, int]:
    import binascii

    ref = resources.files("finetune_kit") / "data" / f"{name}.tiktoken.gz"
    raw = gzip.decompress(ref.read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != _SHA256[name]:
        raise TokenizerError(
            f"The shipped copy of {name} is corrupt (sha256 {digest}, expected "
            f"{_SHA256[name]}); reinstall finetune-kit."
        )
    # One "<base64 token> <rank>" pair a line: split once and decode in C, twice as fast as
    # a loop over lines (this runs once per process and encoding, before the first count).
    fields = raw.split()
    return dict(zip(map(binascii.a2b_base64, fields[0::2]), map(int, fields[1::2]), strict=True))


def _load(name: str) -> tiktoken.Encoding:
    import tiktoken

    tried: list[str] = []
    cached = _tiktoken_cache_file(name)
    if cached is not None and os.path.exists(cached):  # noqa: PTH110
        try:
            return tiktoken.get_encoding(name)
        except Exception as exc:  # a stale or partial cache file: fall through
            tried.append(f"tiktoken's cache ({exc})")
    if name in _DERIVED:
        source, special = _DERIVED[name]
        ranks_from = get_encoding(source)
        return tiktoken.Encoding(
            name=name,
            pat_str=ranks_from._pat_str,
            mergeable_ranks=ranks_from._mergeable_ranks,
            special_tokens=special,
        )
    if name in _SHA256:
        try:
            return tiktoken.Encoding(
                name=name,
                pat_str=_PATTERNS[name],
                mergeable_ranks=_shipped_ranks(name),
                special_tokens=_SPECIAL[name],
            )
        except (OSError, ValueError, TokenizerError) as exc:
            tried.append(f"the copy shipped with finetune-kit ({exc})")
    try:
        return tiktoken.get_encoding(name)
    except Exception as exc:
        tried.append(f"tiktoken's download ({type(exc).__name__}: {exc})")
        raise TokenizerError(
            f"Cannot load the {name} encoding. Tried: {'; '.join(tried)}. Without network "
            "access, set TIKTOKEN_CACHE_DIR to a folder holding tiktoken's file for it."
        ) from exc


# --- Counting ------------------------------------------------------------------------------
# The OpenAI cookbook's approximation (its fine-tuning data-prep notebook), which users compare
# our numbers with: per message 3 tokens plus the encoded length of every string value, plus 1
# when the key is ``name``; plus 3 for priming the reply. Structures the cookbook cannot count
# (it would crash on them) follow the documented rule below, chosen to over- rather than
# under-count, because these numbers feed cost estimates that must be upper bounds.

#: Tokens every message costs besides its values (cookbook: ``tokens_per_message``).
TOKENS_PER_MESSAGE: Final = 3
#: Extra token when a message has a ``name`` (cookbook: ``tokens_per_name``).
TOKENS_PER_NAME: Final = 1
#: Tokens that prime the assistant's reply, once per example.
REPLY_PRIMING: Final = 3
#: Overhead of one tool call besides its id, function name and arguments (like a message).
TOKENS_PER_TOOL_CALL: Final = 3
#: An image part with ``detail: "low"``: OpenAI's fixed cost.
IMAGE_TOKENS_LOW: Final = 85
#: Any other image part: the most a high-detail image can cost (85 + 170 per 512px tile; an
#: image scaled into 768 x 2048 has 8 tiles). We cannot see the size without fetching it.
IMAGE_TOKENS_HIGH: Final = 85 + 170 * 8

#: Special tokens that make a training job fail when they appear in content.
SPECIAL_TOKENS: Final = tuple(sorted({t for table in _SPECIAL.values() for t in table}))
# (o200k_harmony's chat-format tokens are not listed: the service rejects the classic ones.)

# Strings repeated across examples (roles, system prompts, short answers such as labels) are
# counted once; the cache is cleared when full so memory stays flat on any input.
_CACHE_LIMIT: Final = 4096
_CACHE_MAX_CHARS: Final = 64


class TokenCounter:
    """Counts tokens of strings in one encoding, applying the counting rule to messages.

    Args:
        encoding: a loaded tiktoken encoding (see :func:`get_encoding`).
        factor: every string's count is multiplied by this (rounded up): an estimate for a
            model whose own tokenizer is not available (see :func:`token_estimate_factor`).
    """

    def __init__(self, encoding: tiktoken.Encoding, *, factor: float = 1.0) -> None:
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"factor must be a positive number, not {factor!r}")
        self.encoding = encoding
        self.factor = factor
        self._encode: Callable[[str], Sized] = encoding.encode_ordinary
        if factor != 1.0:
            ordinary = encoding.encode_ordinary

            def scaled(text: str) -> Sized:
                # A range has the scaled length without holding the tokens.
                return range(math.ceil(len(ordinary(text)) * factor))

            self._encode = scaled
        self._cache: dict[str, int] = {}

    def count(self, text: str) -> int:
        """Tokens in ``text``, special-token text counted as ordinary text."""
        if len(text) > _CACHE_MAX_CHARS:  # long strings rarely repeat: skip hashing them
            return len(self._encode(text))
        return self.count_repeated(text)

    def count_repeated(self, text: str) -> int:
        """Like :meth:`count`, and remember ``text`` whatever its length (system prompts)."""
        n = self._cache.get(text)
        if n is None:
            n = len(self._encode(text))
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[text] = n
        return n

    def content(self, content: object) -> int:
        """Tokens of a message's ``content``: a string, or a list of text and image parts."""
        if isinstance(content, str):
            return self.count(content)
        total = 0
        for part in _objects(content):
            text = part.get("text")
            if isinstance(text, str):
                total += self.count(text)
            image = part.get("image_url")
            if image is not None:
                detail = image.get("detail") if isinstance(image, dict) else None
                total += IMAGE_TOKENS_LOW if detail == "low" else IMAGE_TOKENS_HIGH
        return total

    def tool_calls(self, calls: object) -> int:
        """Tokens of an assistant's ``tool_calls``: per call 3 + id + name + arguments."""
        total = 0
        for call in _objects(calls):
            total += TOKENS_PER_TOOL_CALL
            call_id = call.get("id")
            if isinstance(call_id, str):
                total += self.count(call_id)
            total += self.function_call(call.get("function"))
        return total

    def function_call(self, function: object) -> int:
        """Tokens of a ``{"name", "arguments"}`` object (tool call or legacy function_call)."""
        if not isinstance(function, dict):
            return 0
        total = 0
        for key in ("name", "arguments"):
            value = function.get(key)
            if isinstance(value, str):
                total += self.count(value)
        return total

    def message(self, message: object) -> tuple[int, int]:
        """Tokens of one message by the cookbook formula, extended to tools and images.

        Returns:
            ``(total, trained)``: all its tokens, and those trained on (an assistant's content
            and calls, unless its weight is 0), each string encoded once.
        """
        if not isinstance(message, dict):
            return 0, 0
        total = TOKENS_PER_MESSAGE
        text = 0  # a string content's tokens
        structured = 0  # content parts, tool calls, function call: not plain string values
        role = message.get("role")
        for key, value in message.items():
            if isinstance(value, str):
                n = self.count_repeated(value) if role == "system" else self.count(value)
                total += n
                if key == "name":
                    total += TOKENS_PER_NAME
                elif key == "content":
                    text = n
            elif key == "content":
                structured += self.content(value)
            elif key == "tool_calls":
                structured += self.tool_calls(value)
            elif key == "function_call":
                structured += self.function_call(value)
        trained = text + structured if role == "assistant" and message.get("weight", 1) != 0 else 0
        return total + structured, trained

    def tools(self, tools: object) -> int:
        """Tokens of an example's ``tools`` (or legacy ``functions``): their compact JSON."""
        if not isinstance(tools, list) or not tools:
            return 0
        try:
            text = json.dumps(tools, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError):
            return 0
        return self.count_repeated(text)

    def messages(self, messages: object, *, tools: object = None) -> tuple[int, int]:
        """Tokens of a conversation (messages, reply priming, tools) and of its trained part."""
        total = REPLY_PRIMING + self.tools(tools)
        trained = 0
        if isinstance(messages, list):
            cache, encode = self._cache, self._encode
            for message in messages:
                # Fast path for the common plain message {"role": ..., "content": "..."}: the
                # same formula as message(), inlined (this loop is the hottest in validation).
                if type(message) is dict and len(message) == 2:
                    role, content = message.get("role"), message.get("content")
                    if type(role) is str and type(content) is str:
                        if len(content) > _CACHE_MAX_CHARS and role != "system":
                            n = len(encode(content))
                        else:
                            n = cache.get(content) or self.count_repeated(content)
                        total += (
                            TOKENS_PER_MESSAGE + (cache.get(role) or self.count_repeated(role)) + n
                        )
                        if role == "assistant":
                            trained += n
                        continue
                n, t = self.message(message)
                total += n
                trained += t
        return total, trained


def _objects(items: object) -> Iterator[dict[str, object]]:
    """The objects (dicts) in a list; anything else in it, or a non-list, counts nothing."""
    if isinstance(items, list):
        yield from (item for item in items if isinstance(item, dict))


def num_tokens_from_messages(
    messages: Sequence[Mapping[str, object]], *, model: str | None = None
) -> int:
    """Tokens of a chat conversation by the cookbook formula, in ``model``'s encoding.

    ``model=None`` counts in o200k_base. Models whose tokenizer does not ship with us are
    estimated (see :func:`token_estimate_factor`). See docs/datasets.md for how tools and
    images count.
    """
    return counter_for_model(model or None).messages(list(messages))[0]
