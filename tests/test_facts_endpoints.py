"""Facts per endpoint: OpenAI's dates for OpenAI, Azure's for Azure, none for other servers."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from finetune_kit import FactsTable, ModelFacts, facts_table, model_facts
from finetune_kit.facts._endpoints import check_endpoint_kind, endpoint_kind_of_url
from finetune_kit.facts._models import (
    AZURE_FACTS,
    JOB_CREATION_ENDS,
    OPENAI_FACTS,
    PRICE_DATE,
    TRAINING_PRICES_PER_MTOK,
)
from finetune_kit.jobs._lifecycle import retirement_warning

D = dt.date


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://api.openai.com/v1", "openai"),
        ("https://API.OpenAI.com./v1/", "openai"),
        ("https://my-res.openai.azure.com/openai/deployments/x", "azure"),
        ("https://proj.services.ai.azure.com/api/projects/p/openai", "azure"),
        ("https://res.cognitiveservices.azure.com/openai/v1", "azure"),
        ("http://127.0.0.1:8765/v1", "other"),
        ("http://localhost:11434/v1", "other"),
        ("https://openai.azure.com.example.org/v1", "other"),
        ("api.openai.com", "openai"),
        ("", "other"),
    ],
)
def test_endpoint_kind_of_url(url: str, kind: str) -> None:
    assert endpoint_kind_of_url(url) == kind


def test_endpoint_kind_is_checked() -> None:
    assert check_endpoint_kind("azure") == "azure"
    with pytest.raises(ValueError, match="'openai', 'azure', 'other'"):
        check_endpoint_kind("bedrock")


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o-2024-08-06",
        "gpt-4o-2024-11-20",
        "gpt-4o-mini-2024-07-18",
        "gpt-4.1-2025-04-14",
        "gpt-4.1-mini-2025-04-14",
        "ft:gpt-4.1-mini-2025-04-14:org:suffix:abc",
    ],
)
def test_openai_snapshots_and_their_fine_tunes_shut_down_2027_01_14(model: str) -> None:
    facts = model_facts(model)
    assert facts.endpoint == "openai"
    assert facts.shutdown_date == D(2027, 1, 14)
    assert not facts.approximate


@pytest.mark.parametrize("model", ["o4-mini", "gpt-4.1-nano-2025-04-14", "gpt-3.5-turbo-0125"])
def test_openai_already_retired_2026_10_23(model: str) -> None:
    assert model_facts(model).shutdown_date == D(2026, 10, 23)


def test_openai_table_is_dated_and_says_when_jobs_end() -> None:
    assert OPENAI_FACTS.checked == PRICE_DATE
    assert OPENAI_FACTS.job_creation_ends == JOB_CREATION_ENDS == D(2027, 1, 6)
    assert OPENAI_FACTS.sources
    assert model_facts("o4-mini").price_per_training_hour == 100.0


def test_training_prices_are_a_view_of_the_openai_table() -> None:
    assert TRAINING_PRICES_PER_MTOK["gpt-4o-mini"] == model_facts("gpt-4o-mini").price_per_mtok
    assert set(TRAINING_PRICES_PER_MTOK) == {
        b for b, f in OPENAI_FACTS.models.items() if f.price_per_mtok is not None
    }


@pytest.mark.parametrize(
    ("model", "methods"),
    [
        ("gpt-4o-mini", ("supervised",)),
        ("gpt-4o", ("supervised", "dpo")),
        ("gpt-4.1", ("supervised", "dpo")),
        ("gpt-4.1-mini", ("supervised", "dpo")),
        ("gpt-4.1-nano", ("supervised", "dpo")),
        ("o4-mini", ("reinforcement",)),
        ("gpt-oss-20b", ("supervised",)),
        ("Qwen-32B", ("supervised",)),
        ("Llama-3.3-70B", ("supervised",)),
        ("Ministral-3B", ("supervised",)),
    ],
)
def test_azure_fine_tunable_bases_and_methods(model: str, methods: tuple[str, ...]) -> None:
    facts = model_facts(model, endpoint="azure")
    assert facts.known
    assert facts.methods == methods
    assert facts.endpoint == "azure"
    assert facts.hosting_per_hour is not None
    assert facts.checked == AZURE_FACTS.checked


def test_azure_dates_are_azure_s_not_openai_s() -> None:
    facts = model_facts("gpt-4.1-2025-04-14.ft-abc123", endpoint="azure")
    assert facts.base == "gpt-4.1"
    assert facts.training_ends == D(2027, 4, 14)
    assert facts.shutdown_date == D(2027, 10, 14)
    assert facts.approximate
    # The open models have no announced retirement; they train on Global capacity only.
    oss = model_facts("gpt-oss-20b", endpoint="azure")
    assert (oss.shutdown_date, oss.training_ends, oss.tiers) == (None, None, ("global",))


def test_azure_tiers_and_prices() -> None:
    facts = model_facts("gpt-4.1-mini", endpoint="azure")
    assert facts.tiers == ("standard", "global", "developer")
    prices = facts.tier_prices_per_mtok
    assert prices["developer"] == pytest.approx(prices["global"] * 0.5)
    assert prices["standard"] > prices["global"] == facts.price_per_mtok


def test_other_endpoints_know_limits_but_no_dates_or_prices() -> None:
    facts = model_facts("gpt-4o-mini", endpoint="other")
    assert facts.known
    assert facts.training_context == model_facts("gpt-4o-mini").training_context
    assert (facts.shutdown_date, facts.price_per_mtok) == (None, None)
    assert all(
        f.shutdown_date is None and f.training_ends is None
        for f in facts_table("other").models.values()
    )


def test_unknown_models_get_permissive_facts_of_their_endpoint() -> None:
    facts = model_facts("my-deployment", endpoint="azure")
    assert not facts.known
    assert facts.endpoint == "azure"
    assert facts.methods == ("supervised", "dpo", "reinforcement")
    # A deployment name says nothing; the base read from the job (or given) does.
    told = model_facts("my-deployment", endpoint="azure", base_model="gpt-4o-2024-08-06")
    assert told.base == "gpt-4o"
    assert told.known


def test_users_override_facts_with_their_own_table() -> None:
    mine = dataclasses.replace(model_facts("gpt-4o-mini"), price_per_mtok=2.0, shutdown_date=None)
    table = facts_table("openai").with_models(mine, checked=D(2027, 3, 1))
    assert isinstance(table, FactsTable)
    assert table.checked == D(2027, 3, 1)
    got = model_facts("gpt-4o-mini-2024-07-18", table=table)
    assert (got.price_per_mtok, got.shutdown_date) == (2.0, None)
    assert model_facts("gpt-4o-mini").price_per_mtok == 3.0  # the built-in table is unchanged
    added = facts_table("other").with_models(
        ModelFacts("my-base", 8_192, ("supervised",), 1.0, D(2030, 1, 1))
    )
    assert model_facts("my-base", table=added).endpoint == "other"
    assert retirement_warning("my-base", D(2029, 12, 1), table=added) is not None


# --- retirement warnings answer per endpoint --------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "day", "expected"),
    [
        ("openai", D(2026, 6, 1), None),
        ("openai", D(2026, 12, 1), "retires on 2027-01-14 (in 44 days) on OpenAI"),
        ("openai", D(2027, 1, 14), "was retired on 2027-01-14 (OpenAI)"),
        ("openai", D(2028, 6, 1), "was retired on 2027-01-14 (OpenAI)"),
        ("azure", D(2026, 12, 1), None),
        ("azure", D(2027, 2, 1), "training ends on about 2027-04-14 (in 72 days) on Azure"),
        ("azure", D(2027, 5, 1), "accepts no new fine-tuning jobs since about 2027-04-14"),
        ("azure", D(2027, 10, 14), "was retired on about 2027-10-14 (Azure)"),
        ("other", D(2026, 12, 1), None),
        ("other", D(2027, 2, 1), None),
        ("other", D(2028, 12, 31), None),
    ],
)
def test_retirement_warning_per_endpoint(endpoint: str, day: dt.date, expected: str | None) -> None:
    said = retirement_warning("gpt-4o-mini-2024-07-18", day, endpoint=endpoint)  # type: ignore[arg-type]
    if expected is None:
        assert said is None
    else:
        assert said is not None
        assert expected in said


def test_after_training_ends_on_azure_the_warning_says_how_long_models_serve() -> None:
    said = retirement_warning("gpt-4.1", D(2027, 5, 1), endpoint="azure")
    assert said is not None
    assert "tuned models serve until about 2027-10-14" in said


def test_refused_creation_explains_the_wind_down_only_on_openai() -> None:
    from finetune_kit.jobs._lifecycle import _unavailable

    from .fake_openai import status_error

    refused = status_error(403, message="not allowed")
    on_openai = _unavailable(refused)
    on_azure = _unavailable(refused, endpoint="azure")
    assert on_openai is not None
    assert on_azure is not None
    assert "winding down" in str(on_openai)
    assert "winding down" not in str(on_azure)
    assert "not allowed" in str(on_azure)
    assert _unavailable(status_error(400), endpoint="azure") is None


def test_model_facts_are_hashable_values() -> None:
    azure = model_facts("gpt-4.1", endpoint="azure")
    assert hash(azure) == hash(model_facts("gpt-4.1-2025-04-14", endpoint="azure"))
    assert len({azure, model_facts("gpt-4.1")}) == 2
