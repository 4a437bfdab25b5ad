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
import os
import re
import tempfile
import threading
import warnings
from importlib import resources
from typing import TYPE_CHECKING, Final, Literal

from ._exceptions import TokenizerError

if TYPE_CHECKING:
    import tiktoken

__all__ = [
    "EncodingName",
    "FinetuneKitWarning",
    "base_model_name",
    "encoding_for_model",
    "encoding_name_for_model",
    "get_encoding",
]

EncodingName = Literal["o200k_base", "cl100k_base"]


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

# Model name prefixes -> encoding. Longest prefix wins, so "gpt-4o" beats "gpt-4".
_PREFIXES: Final[dict[str, EncodingName]] = {
    "gpt-4o": "o200k_base",
    "chatgpt-4o": "o200k_base",
    "gpt-4.1": "o200k_base",
    "gpt-4.5": "o200k_base",
    "gpt-5": "o200k_base",
    "gpt-oss": "o200k_base",
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

_lock = threading.Lock()
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
    return _DATE_SUFFIX.sub("", name)


def _lookup(model: str) -> EncodingName | None:
    base = base_model_name(model)
    for prefix in _SORTED_PREFIXES:
        if base == prefix or base.startswith((prefix + "-", prefix + ".")):
            return _PREFIXES[prefix]
    return None


def encoding_name_for_model(model: str, *, warn: bool = True) -> EncodingName:
    """The encoding ``model`` uses; unknown names (e.g. Azure deployments) get o200k_base.

    An unknown name is reported once per process with a :class:`FinetuneKitWarning`, because a
    wrong encoding silently skews token counts and the token ids classify() biases.
    """
    found = _lookup(model)
    if found is not None:
        return found
    if warn and model not in _warned:
        _warned.add(model)
        warnings.warn(
            f"Unknown model name {model!r}: counting tokens with o200k_base, the encoding of "
            "current chat models. Pass the base model's name (e.g. 'gpt-4.1-mini') if this is "
            "a deployment alias.",
            FinetuneKitWarning,
            stacklevel=3,
        )
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
    import base64

    ref = resources.files("finetune_kit") / "data" / f"{name}.tiktoken.gz"
    raw = gzip.decompress(ref.read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != _SHA256[name]:
        raise TokenizerError(
            f"The shipped copy of {name} is corrupt (sha256 {digest}, expected "
            f"{_SHA256[name]}); reinstall finetune-kit."
        )
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _load(name: str) -> tiktoken.Encoding:
    import tiktoken

    tried: list[str] = []
    cached = _tiktoken_cache_file(name)
    if cached is not None and os.path.exists(cached):  # noqa: PTH110
        try:
            return tiktoken.get_encoding(name)
        except Exception as exc:  # a stale or partial cache file: fall through
            tried.append(f"tiktoken's cache ({exc})")
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
