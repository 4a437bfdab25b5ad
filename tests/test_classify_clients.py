"""The caller's client: read at every call, capabilities kept per client, results kept.

- a rotated key or a changed ``base_url`` applies to the next call (sync, async, TunedModel);
- what an endpoint refused is remembered for that client only, changed only by an explicit
  refusal or by repeated off-label answers, and can be inspected and reset;
- a fatal error in a many-texts call carries the results already paid for;
- a pandas Series comes back as a Series on the same index;
- the token encoding is never loaded on the event loop's thread.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest
import respx

import finetune_kit as fk
from finetune_kit.classification._capabilities import OFF_LABEL_STRIKES
from finetune_kit.classification._labels import cached_plan, plan_for

from .classify_calls import amany, many
from .fake_openai import BASE_URL, OPENAI_MAJOR, bodies, completion, ok, refused

if TYPE_CHECKING:
    from collections.abc import Iterator

    from finetune_kit.classification._labels import KeyPlan
    from tests.conftest import FreshImport

LABELS = ["cat", "dog", "bird"]
TOP = [("cat", math.log(0.8)), ("dog", math.log(0.15)), ("bird", math.log(0.05))]
OTHER_URL = "https://other.test/v1"


@pytest.fixture
def two_hosts() -> Iterator[respx.Router]:
    """A router answering chat completions on ``BASE_URL`` and on ``OTHER_URL``."""
    using = "httpcore2" if OPENAI_MAJOR >= 3 else "httpcore"
    with respx.mock(using=using, assert_all_called=False) as router:
        yield router


def _auth(route: respx.Route) -> list[str]:
    return [call.request.headers["authorization"] for call in route.calls]


# --- The client is read at every call --------------------------------------------------------


def test_a_rotated_key_is_used_by_the_next_sync_call(api: respx.Router) -> None:
    route = api.post("/chat/completions").mock(return_value=ok("cat", top=TOP))
    client = openai.OpenAI(api_key="sk-old", base_url=BASE_URL)
    model = fk.TunedModel("ft:gpt-4o-mini:acme::1", client=client)

    fk.classify("x", labels=LABELS, model="gpt-4o-mini", client=client)
    model.classify("x", labels=LABELS)
    client.api_key = "sk-new"
    fk.classify("x", labels=LABELS, model="gpt-4o-mini", client=client)
    model.classify("x", labels=LABELS)

    assert _auth(route) == ["Bearer sk-old"] * 2 + ["Bearer sk-new"] * 2


async def test_a_rotated_key_is_used_by_the_next_async_call(api: respx.Router) -> None:
    route = api.post("/chat/completions").mock(return_value=ok("cat", top=TOP))
    client = openai.AsyncOpenAI(api_key="sk-old", base_url=BASE_URL)
    model = fk.AsyncTunedModel("ft:gpt-4o-mini:acme::1", client=client)

    await fk.aclassify("x", labels=LABELS, model="gpt-4o-mini", client=client)
    client.api_key = "sk-new"
    await fk.aclassify("x", labels=LABELS, model="gpt-4o-mini", client=client)
    await model.classify("x", labels=LABELS)
    await fk.aclassify_many(
        ["x", "y"], labels=LABELS, model="gpt-4o", client=client, progress=False
    )

    assert _auth(route) == ["Bearer sk-old"] + ["Bearer sk-new"] * 4


def test_a_changed_base_url_is_used_by_the_next_sync_call(two_hosts: respx.Router) -> None:
    first = two_hosts.post(f"{BASE_URL}/chat/completions").mock(return_value=ok("cat", top=TOP))
    second = two_hosts.post(f"{OTHER_URL}/chat/completions").mock(return_value=ok("dog", top=TOP))
    client = openai.OpenAI(api_key="sk-test", base_url=BASE_URL)

    assert fk.classify("x", labels=LABELS, model="gpt-4o-mini", client=client).label == "cat"
    client.base_url = OTHER_URL + "/"
    assert fk.classify("x", labels=LABELS, model="gpt-4o-mini", client=client).label == "dog"

    assert (first.call_count, second.call_count) == (1, 1)


async def test_a_changed_base_url_is_used_by_the_next_async_call(two_hosts: respx.Router) -> None:
    first = two_hosts.post(f"{BASE_URL}/chat/completions").mock(return_value=ok("cat", top=TOP))
    second = two_hosts.post(f"{OTHER_URL}/chat/completions").mock(return_value=ok("dog", top=TOP))
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=BASE_URL)

    await fk.aclassify("x", labels=LABELS, model="gpt-4o-mini", client=client)
    client.base_url = OTHER_URL + "/"
    result = await fk.aclassify("x", labels=LABELS, model="gpt-4o-mini", client=client)

    assert result.label == "dog"
    assert (first.call_count, second.call_count) == (1, 1)


def test_the_copy_is_reused_only_while_the_client_is_unchanged() -> None:
    from finetune_kit.classification._capabilities import async_client, sync_client

    client = openai.OpenAI(api_key="sk-test", base_url=BASE_URL)
    first = sync_client(client)

    assert sync_client(client) is first
    assert first.max_retries == 0
    client.timeout = 5.0
    second = sync_client(client)
    assert second is not first
    assert second.timeout == 5.0
    headers: dict[str, str] = client._custom_headers  # type: ignore[assignment]
    headers["X-Team"] = "search"  # changed in place
    third = sync_client(client)
    assert third is not second
    assert third.default_headers["X-Team"] == "search"
    aio = openai.AsyncOpenAI(api_key="sk-old", base_url=BASE_URL)
    before = async_client(aio)
    aio.api_key = "sk-new"
    assert async_client(aio).api_key == "sk-new"
    assert before.api_key == "sk-old"


# --- Capabilities per client -----------------------------------------------------------------


def test_a_refusal_is_remembered_for_that_client_only(api: respx.Router) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[
            refused("logit_bias"),
            ok('{"label": "cat"}'),
            ok('{"label": "dog"}'),
            ok("bird", top=TOP),
        ]
    )
    one = openai.OpenAI(api_key="sk-test", base_url=BASE_URL)
    other = openai.OpenAI(api_key="sk-test", base_url=BASE_URL)

    first = fk.classify("x", labels=LABELS, model="gpt-4o-mini", client=one)
    again = fk.classify("x", labels=LABELS, model="gpt-4o-mini", client=one)
    elsewhere = fk.classify("x", labels=LABELS, model="gpt-4o-mini", client=other)

    assert [first.technique, again.technique, elsewhere.technique] == [
        "structured",
        "structured",
        "logit_bias",
    ]
    assert "logit_bias" not in bodies(route)[2]
    assert fk.capabilities(one).refused("gpt-4o-mini") == {"logit_bias"}
    assert fk.capabilities(other).refused("gpt-4o-mini") == frozenset()
    assert fk.capabilities(one).as_dict() == {
        (BASE_URL + "/", "gpt-4o-mini"): frozenset({"logit_bias"})
    }


def test_reset_makes_the_next_call_probe_again(api: respx.Router) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[refused("logit_bias"), ok('{"label": "cat"}'), ok("dog", top=TOP)]
    )
    client = openai.OpenAI(api_key="sk-test", base_url=BASE_URL)

    fk.classify("x", labels=LABELS, model="gpt-4o-mini", client=client)
    fk.capabilities(client).reset("gpt-4o-mini")
    result = fk.classify("x", labels=LABELS, model="gpt-4o-mini", client=client)

    assert result.technique == "logit_bias"
    assert "logit_bias" in bodies(route)[2]
    assert fk.capabilities(client).refused("gpt-4o-mini") == frozenset()


def test_one_off_label_answer_does_not_switch_logit_bias_off(api: respx.Router) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[ok("The"), ok('{"label": "cat"}'), ok("dog", top=TOP)]
    )
    client = openai.OpenAI(api_key="sk-test", base_url=BASE_URL)

    fluke = fk.classify("x", labels=LABELS, model="gpt-4o-mini", client=client)
    next_call = fk.classify("y", labels=LABELS, model="gpt-4o-mini", client=client)

    assert fluke.technique == "structured"  # this call moved down a rung
    assert next_call.technique == "logit_bias"  # the client did not
    assert "logit_bias" in bodies(route)[2]
    assert fk.capabilities(client).refused("gpt-4o-mini") == frozenset()


def test_repeated_off_label_answers_switch_logit_bias_off(api: respx.Router) -> None:
    answers: list[httpx.Response] = []
    for _ in range(OFF_LABEL_STRIKES):
        answers += [ok("The"), ok('{"label": "cat"}')]
    route = api.post("/chat/completions").mock(side_effect=[*answers, ok('{"label": "dog"}')])
    client = openai.OpenAI(api_key="sk-test", base_url=BASE_URL)

    for _ in range(OFF_LABEL_STRIKES):
        fk.classify("x", labels=LABELS, model="gpt-4o-mini", client=client)
    after = fk.classify("x", labels=LABELS, model="gpt-4o-mini", client=client)

    assert after.technique == "structured"
    assert "logit_bias" not in bodies(route)[-1]
    assert route.call_count == 2 * OFF_LABEL_STRIKES + 1
    assert fk.capabilities(client).refused("gpt-4o-mini") == {"logit_bias"}


def test_a_followed_bias_clears_earlier_off_label_answers(api: respx.Router) -> None:
    fluke = [ok("The"), ok('{"label": "cat"}')]
    answers = fluke * (OFF_LABEL_STRIKES - 1) + [ok("dog", top=TOP)] + fluke
    api.post("/chat/completions").mock(side_effect=answers)
    client = openai.OpenAI(api_key="sk-test", base_url=BASE_URL)

    for _ in range(OFF_LABEL_STRIKES + 1):
        fk.classify("x", labels=LABELS, model="gpt-4o-mini", client=client)

    assert fk.capabilities(client).refused("gpt-4o-mini") == frozenset()


# --- Finished work survives a fatal error ----------------------------------------------------


def _then_unauthorised(calls: int) -> Any:
    seen = [0]

    def answer(request: httpx.Request) -> httpx.Response:
        del request
        seen[0] += 1
        if seen[0] > calls:
            error = {"message": "bad key", "type": "invalid_request_error", "code": None}
            return httpx.Response(401, json={"error": error})
        return httpx.Response(200, json=completion("cat", top=TOP))

    return answer


def test_a_fatal_error_carries_the_finished_results(
    api: respx.Router, client: openai.OpenAI
) -> None:
    api.post("/chat/completions").mock(side_effect=_then_unauthorised(2))

    with pytest.raises(openai.AuthenticationError) as caught:
        many(client, ["a", "b", "c", "d"], concurrency=1, retry=fk.RetryPolicy.none())

    finished = fk.finished_results(caught.value)
    assert finished is not None
    assert [r.label if isinstance(r, fk.Classification) else r for r in finished] == [
        "cat",
        "cat",
        None,
        None,
    ]
    assert fk.finished_results(ValueError("unrelated")) is None


async def test_a_fatal_error_carries_the_finished_results_async(
    api: respx.Router, async_client: openai.AsyncOpenAI
) -> None:
    api.post("/chat/completions").mock(side_effect=_then_unauthorised(3))

    with pytest.raises(openai.AuthenticationError) as caught:
        await amany(
            async_client, ["a", "b", "c", "d", "e"], concurrency=1, retry=fk.RetryPolicy.none()
        )

    finished = fk.finished_results(caught.value)
    assert finished is not None
    assert [isinstance(r, fk.Classification) for r in finished] == [True] * 3 + [False] * 2
    assert finished[3:] == [None, None]


# --- pandas ----------------------------------------------------------------------------------


def test_a_series_comes_back_as_a_series_on_its_index(
    api: respx.Router, client: openai.OpenAI
) -> None:
    pandas = pytest.importorskip("pandas")

    def by_text(request: httpx.Request) -> httpx.Response:
        text = str(request.read().decode())
        label = "dog" if "bark" in text else "cat"
        return httpx.Response(200, json=completion(label, top=[(label, -0.1)]))

    api.post("/chat/completions").mock(side_effect=by_text)
    texts = pandas.Series(["meow", "bark", "purr"], index=["r7", "r3", "r9"], name="text")

    results = fk.classify_many(
        texts, labels=LABELS, model="gpt-4o-mini", client=client, progress=False
    )

    assert isinstance(results, pandas.Series)
    assert list(results.index) == ["r7", "r3", "r9"]
    assert results["r3"].label == "dog"
    assert [r.label for r in results] == ["cat", "dog", "cat"]


# --- The encoding and the event loop ---------------------------------------------------------


async def test_aclassify_loads_the_encoding_off_the_event_loop(
    api: respx.Router, async_client: openai.AsyncOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.post("/chat/completions").mock(return_value=ok("cat", top=TOP))
    loop_thread = threading.current_thread()
    planned_on: list[threading.Thread] = []
    real = plan_for

    def recording(names: tuple[str, ...], model: str) -> KeyPlan:
        if cached_plan(names, model) is None:  # this call computes it (loads the encoding)
            planned_on.append(threading.current_thread())
        return real(names, model)

    monkeypatch.setattr("finetune_kit.classification._ladder.plan_for", recording)
    # Labels no other test uses, so no plan for them is cached yet.
    labels = ["cat", "dog", "off-loop-label"]

    await fk.aclassify("x", labels=labels, model="gpt-4o-mini", client=async_client)
    await fk.aclassify_many(
        ["x"], labels=[*labels, "another"], model="gpt-4o", client=async_client, progress=False
    )

    assert len(planned_on) == 2
    assert all(thread is not loop_thread for thread in planned_on)
    # Once computed, the plan is reused: nothing is computed again, on the loop or off it.
    await fk.aclassify("x", labels=labels, model="gpt-4o-mini", client=async_client)
    assert len(planned_on) == 2


def test_warm_up_loads_the_models_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str] = []
    monkeypatch.setattr(
        "finetune_kit.classification._classify.get_encoding", lambda name: loaded.append(name)
    )

    fk.warm_up(model="gpt-4o-mini")
    fk.warm_up(model="my-deployment", base_model="gpt-3.5-turbo")
    fk.ClassificationTask(LABELS).warm_up(model="gpt-4.1")

    assert loaded == ["o200k_base", "cl100k_base", "o200k_base"]


# --- No process-wide memory ------------------------------------------------------------------


def test_no_module_level_mutable_state_but_weak_maps_and_pure_caches() -> None:
    import importlib
    import pkgutil
    import weakref

    import finetune_kit.classification
    import finetune_kit.models

    names = ["finetune_kit.evaluate"]
    for package in (finetune_kit.classification, finetune_kit.models):
        names += [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
    allowed = {
        # What each client learnt, weakly keyed on the client (dies with it).
        ("finetune_kit.classification._capabilities", "_memory"),
        ("finetune_kit.classification._capabilities", "_memory_of_copy"),
        ("finetune_kit.classification._capabilities", "_copies"),
        # A cache of a pure function of immutable input (label names, model name).
        ("finetune_kit.classification._labels", "_plans"),
    }
    found = set()
    for name in names:
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            if attribute.startswith("__"):
                continue
            if isinstance(value, (dict, set, list, weakref.WeakKeyDictionary)):
                found.add((name, attribute))
    assert found == allowed


def test_importing_the_package_does_not_import_pandas(fresh_import: FreshImport) -> None:
    assert "pandas" not in fresh_import.modules
