"""Shared fixtures: mocked OpenAI clients for wiring tests.

openai 3.x sends requests through httpx2/httpcore2, which plain respx does not see; the
``pytest-httpx2`` plugin registers respx's ``httpcore2`` mocker. openai 2.x still uses
httpx/httpcore. ``api`` picks the right one so a test is written once for both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import openai
import pytest
import respx

if TYPE_CHECKING:
    from collections.abc import Iterator

OPENAI_MAJOR = int(openai.__version__.split(".", 1)[0])
BASE_URL = "https://api.test/v1"


@pytest.fixture
def api() -> Iterator[respx.Router]:
    """A respx router for ``BASE_URL`` that sees requests from either openai major version."""
    using = "httpcore2" if OPENAI_MAJOR >= 3 else "httpcore"
    with respx.mock(base_url=BASE_URL, using=using, assert_all_called=False) as router:
        yield router


@pytest.fixture
def client() -> openai.OpenAI:
    """A sync client aimed at the mocked ``BASE_URL`` (with a fake key)."""
    return openai.OpenAI(api_key="sk-test-not-a-real-key", base_url=BASE_URL)


@pytest.fixture
def async_client() -> openai.AsyncOpenAI:
    """An async client aimed at the mocked ``BASE_URL`` (with a fake key)."""
    return openai.AsyncOpenAI(api_key="sk-test-not-a-real-key", base_url=BASE_URL)
