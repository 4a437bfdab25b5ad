"""Job.list / AsyncJob.list page lazily: a page is fetched only when the iteration needs it."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import httpx
import pytest

from finetune_kit import AsyncJob, Job

from .fake_openai import job_json, page

if TYPE_CHECKING:
    import openai
    import respx

PAGES = 5


@pytest.fixture
def history(api: respx.Router) -> respx.Route:
    """Five full pages of jobs, newest first, following the ``after`` cursor."""
    ids = [f"ftjob-{i}" for i in range(100 * PAGES)]

    def serve(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        start = ids.index(after) + 1 if after else 0
        size = int(request.url.params["limit"])
        chunk = ids[start : start + size]
        return httpx.Response(
            200, json=page([job_json(i) for i in chunk], has_more=start + size < len(ids))
        )

    return api.get("/fine_tuning/jobs").mock(side_effect=serve)


def test_list_fetches_nothing_until_iterated_and_stops_when_the_caller_stops(
    history: respx.Route, client: openai.OpenAI
) -> None:
    jobs = Job.list(client=client)
    assert history.call_count == 0
    first = list(itertools.islice(jobs, 150))
    assert [j.id for j in first[:2]] == ["ftjob-0", "ftjob-1"]
    assert first[-1].id == "ftjob-149"
    assert history.call_count == 2  # two pages for 150 jobs, not all five
    assert history.calls[1].request.url.params["after"] == "ftjob-99"


def test_list_goes_through_every_page_when_iterated_to_the_end(
    history: respx.Route, client: openai.OpenAI
) -> None:
    assert len(list(Job.list(client=client))) == 100 * PAGES
    assert history.call_count == PAGES


def test_list_with_a_limit_asks_only_for_what_it_needs(
    history: respx.Route, client: openai.OpenAI
) -> None:
    assert [j.id for j in Job.list(limit=120, client=client)][-1] == "ftjob-119"
    assert [c.request.url.params["limit"] for c in history.calls] == ["100", "20"]


async def test_async_list_is_an_async_iterator_that_stops_when_the_caller_stops(
    history: respx.Route, async_client: openai.AsyncOpenAI
) -> None:
    jobs = AsyncJob.list(client=async_client)
    assert history.call_count == 0
    seen: list[AsyncJob] = []
    async for job in jobs:
        seen.append(job)
        if len(seen) == 101:
            break
    assert seen[-1].id == "ftjob-100"
    assert isinstance(seen[0], AsyncJob)
    assert history.call_count == 2
