"""The test suite's fixtures, defined once here.

- A fake OpenAI API: ``api`` (the respx router), ``client``/``async_client`` aimed at it, and
  the in-memory services of ``tests/fake_openai.py`` on it (``fake`` for jobs, ``files``).
- No real waits: ``sleeps``/``policy`` (a retry policy that records its waits) and ``clock``
  (a ManualClock shared by a local backend and the library's sleeps).
- Local backends in process: ``clocked_server`` and ``local_server``.
- Pinned state: ``openai_endpoint``, ``fresh_capabilities``, ``pinned_today``.
- One default SSL context for every client the suite builds (``_one_ssl_context``).
- ``fresh_import``: what ``import finetune_kit`` does in a fresh interpreter, run once.

openai 3.x sends requests through httpx2/httpcore2, which plain respx does not see; the
``pytest-httpx2`` plugin registers respx's ``httpcore2`` mocker. openai 2.x still uses
httpx/httpcore. ``api`` picks the right one so a test is written once for both.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import openai
import pytest
import respx

from finetune_kit import RetryPolicy
from finetune_kit.classification._classify import forget_capabilities
from finetune_kit.jobs import _flows as job_flows
from finetune_kit.local import LocalServer, ManualClock

from .fake_openai import BASE_URL, OPENAI_MAJOR, FakeFiles, FakeJobs, Sleeps

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session", autouse=True)
def _one_ssl_context() -> Iterator[None]:
    """Every HTTP client the tests build shares one default SSL context.

    Each ``openai`` client builds an HTTP transport, which loads the system's CA bundle into
    a new SSL context (about 25 ms); the suite builds thousands of clients and makes no TLS
    connection, so that was a fifth of its time. The context is the same one each client
    would have built; only the loading happens once.
    """
    places = (
        ("httpcore2", "default_ssl_context"),  # openai 3.x: httpx2's verify=True
        ("httpx._transports.default", "create_ssl_context"),  # openai 2.x: httpx
    )
    with pytest.MonkeyPatch.context() as patch:
        for module_name, name in places:
            try:
                module = importlib.import_module(module_name)
            except ImportError:  # the other major version of openai
                continue
            build = getattr(module, name)
            patch.setattr(module, name, _built_once(build))
        yield


def _built_once(build: Any) -> Any:
    cached = functools.lru_cache(maxsize=8)(build)

    def context(*args: Any, **kwargs: Any) -> Any:
        # Only the default (verify=True, no client certificate) is shared; any other
        # request builds its own context as before.
        if kwargs.get("verify", True) is True and not kwargs.get("cert") and not args:
            return cached(**kwargs)
        return build(*args, **kwargs)

    return context


@dataclass(frozen=True)
class FreshImport:
    """What ``import finetune_kit`` did in a fresh interpreter without ``OPENAI_*`` set."""

    modules: frozenset[str]  # sys.modules right after the import
    encodings_loaded: int
    default_clients_built: bool
    label_plans_cached: int
    stdout: str  # anything the import printed, before the report
    stderr: str


_FRESH_IMPORT = """
import json, sys
import finetune_kit
modules = sorted(sys.modules)
import finetune_kit.facts._tokens as t, finetune_kit._core.session as c
import finetune_kit.classification._classify as k
print(json.dumps({
    "modules": modules,
    "encodings_loaded": len(t._cache),
    "default_clients_built": not (c._default_client is None and c._default_async_client is None),
    "label_plans_cached": k.plan_keys.cache_info().currsize,
}))
"""


@pytest.fixture(scope="session")
def fresh_import() -> FreshImport:
    """One fresh interpreter's ``import finetune_kit``, shared by the tests that check the import
    stays light (no notebook, Azure or retry libraries) and free of side effects (no encoding,
    client, cache or output, even with no ``OPENAI_*`` environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    done = subprocess.run(
        [sys.executable, "-c", _FRESH_IMPORT],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    *printed, report = done.stdout.splitlines()
    found = json.loads(report)
    return FreshImport(
        modules=frozenset(found["modules"]),
        encodings_loaded=found["encodings_loaded"],
        default_clients_built=found["default_clients_built"],
        label_plans_cached=found["label_plans_cached"],
        stdout="\n".join(printed),
        stderr=done.stderr,
    )


@pytest.fixture
def api() -> Iterator[respx.Router]:
    """A respx router for ``BASE_URL`` that sees requests from either openai major version."""
    using = "httpcore2" if OPENAI_MAJOR >= 3 else "httpcore"
    with respx.mock(base_url=BASE_URL, using=using, assert_all_called=False) as router:
        yield router


@pytest.fixture
def fake(api: respx.Router) -> FakeJobs:
    """An in-memory fine-tuning jobs service behind ``api`` (see ``fake_openai.FakeJobs``)."""
    return FakeJobs(api)


@pytest.fixture
def files(api: respx.Router) -> FakeFiles:
    """In-memory fine-tune files and uploads behind ``api`` (see ``fake_openai.FakeFiles``)."""
    return FakeFiles(api)


@pytest.fixture
def sleeps() -> Sleeps:
    """Records the waits of a retry policy instead of sleeping."""
    return Sleeps()


@pytest.fixture
def policy(sleeps: Sleeps) -> RetryPolicy:
    """A retry policy whose sleeps and clock are ``sleeps``'s (no real waiting)."""
    return sleeps.policy()


@pytest.fixture
def client() -> openai.OpenAI:
    """A sync client aimed at the mocked ``BASE_URL`` (with a fake key)."""
    return openai.OpenAI(api_key="sk-test-not-a-real-key", base_url=BASE_URL)


@pytest.fixture
def async_client() -> openai.AsyncOpenAI:
    """An async client aimed at the mocked ``BASE_URL`` (with a fake key)."""
    return openai.AsyncOpenAI(api_key="sk-test-not-a-real-key", base_url=BASE_URL)


class RecordingClock(ManualClock):
    """A :class:`~finetune_kit.local.ManualClock` that also records every sleep.

    Shared by both ends of a loopback test: the server built with ``clock=`` reads it, and the
    library's waits (polling, retry backoff, Retry-After) go through :meth:`policy`'s injected
    sleeps, which advance it instead of sleeping — whole flows run without real waits.
    """

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        super().sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await super().asleep(seconds)

    def policy(self) -> RetryPolicy:
        """A retry policy whose waits advance this clock (no jitter, generous attempts)."""
        return RetryPolicy(
            max_attempts=8, sleep=self.sleep, async_sleep=self.asleep, clock=self, jitter=0.0
        )


@pytest.fixture
def clock() -> RecordingClock:
    """Time that stands still until advanced (``clock.advance``, or its injected sleeps)."""
    return RecordingClock()


@pytest.fixture
def clocked_server(clock: RecordingClock) -> Iterator[LocalServer]:
    """A local backend in process whose time is ``clock`` (default pace: jobs take seconds)."""
    with LocalServer(clock=clock, in_process=True) as server:
        yield server


@pytest.fixture
def local_server(clock: RecordingClock) -> Iterator[LocalServer]:
    """A local backend in process, in memory, at 100x speed on ``clock``."""
    with LocalServer(speed=100.0, clock=clock, in_process=True) as server:
        yield server


@pytest.fixture
def openai_endpoint() -> Iterator[None]:
    """Calls made in the test count as made on OpenAI (its lifecycle dates and wind-down),
    whatever URL the mocked client has: tests about OpenAI's own behaviour ask for it."""
    from finetune_kit import default_session, set_default_session

    previous = set_default_session(default_session().with_options(endpoint="openai"))
    yield
    set_default_session(previous)


@pytest.fixture
def fresh_capabilities() -> Iterator[None]:
    """No model capability learned by an earlier test (classify remembers them per client)."""
    forget_capabilities()
    yield
    forget_capabilities()


@pytest.fixture
def pinned_today(monkeypatch: pytest.MonkeyPatch) -> None:
    """Job creation's "today" is 2026-06-01: far from any retirement date of the models the
    job tests use, so no lifecycle warning depends on when the suite runs."""
    monkeypatch.setattr(job_flows, "_today", lambda: dt.date(2026, 6, 1))
