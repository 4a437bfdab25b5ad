"""The main command: ``finetune-kit demo`` runs the whole loop offline on the local backend."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

import pytest

from finetune_kit.cli._main import main
from finetune_kit.local import LocalServer
from tests.dates import today_is

if TYPE_CHECKING:
    from collections.abc import Iterator

    from finetune_kit import RetryPolicy
    from tests.conftest import RecordingClock


@pytest.fixture(autouse=True)
def clocked_backend(monkeypatch: pytest.MonkeyPatch, clock: RecordingClock) -> None:
    """Run the demo's local backend in process on the shared fake clock: no socket to set
    up, and polling never really sleeps."""

    def backend(speed: float) -> tuple[LocalServer, RetryPolicy]:
        return LocalServer(speed=speed, clock=clock, in_process=True), clock.policy()

    monkeypatch.setattr("finetune_kit.cli._demo._local_backend", backend)


@pytest.fixture
def socket_backend(monkeypatch: pytest.MonkeyPatch, clock: RecordingClock) -> None:
    """The Azure demo's control plane is reached by azure-core's own HTTP stack (requests),
    which needs a socket: serve on loopback, still on the shared fake clock."""

    def backend(speed: float) -> tuple[LocalServer, RetryPolicy]:
        return LocalServer(speed=speed, clock=clock), clock.policy()

    monkeypatch.setattr("finetune_kit.cli._demo._local_backend", backend)


@pytest.fixture(autouse=True)
def _a_pinned_day() -> Iterator[None]:
    # The demo must not depend on the real calendar (filterwarnings=error fails any warning).
    with today_is(dt.date(2026, 6, 1)):
        yield


def test_demo_json_summary_shows_tuned_beating_base(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    summary = json.loads(out)  # stdout holds the JSON object and nothing else
    assert summary["backend"] == "local"
    assert summary["n_examples"] == summary["n_train"] + summary["n_validation"]
    assert summary["validation_errors"] == 0
    assert summary["fine_tuned_model"].startswith("ft:gpt-4o-mini:local:demo:")
    assert 0.0 <= summary["base_accuracy"] <= 1.0
    assert summary["tuned_accuracy"] >= summary["base_accuracy"] + 0.3
    for sample in summary["samples"]:
        assert sample["label"] in summary["labels"]
        assert sum(sample["probabilities"].values()) == pytest.approx(1.0)


def test_demo_human_output_walks_through_each_step(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--no-progress"])
    out, _ = capsys.readouterr()
    assert code == 0
    for step in ("dataset", "validate  ok", "estimate", "split", "fine-tune job", "evaluate"):
        assert step in out
    assert "accuracy" in out
    assert "(tuned)" in out


def test_remote_demo_without_a_terminal_refuses_before_uploading(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Point the "remote" endpoint at a port nothing listens on: the run must stop at the
    # confirmation, before any request is made.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code = main(["demo", "--remote", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "pass --yes" in err
    assert "sk-test-not-a-real-key" not in out + err


@pytest.mark.usefixtures("socket_backend")
def test_azure_demo_json_has_accuracies_and_the_deployment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("azure.core")
    code = main(["demo", "--azure", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["backend"] == "local-azure"
    assert summary["tier"] == "global"
    tuned = summary["fine_tuned_model"]
    assert tuned.startswith("gpt-4o-mini-2024-07-18.ft-")
    deployment = summary["deployment"]
    assert {k: deployment[k] for k in ("name", "model", "sku")} == {
        "name": "finetune-kit-demo",
        "model": tuned,
        "sku": "Standard",
    }
    # The hosting estimate comes from the Azure facts, with their date.
    assert deployment["hosting_usd_per_hour"] > 0
    dt.date.fromisoformat(deployment["hosting_price_date"])
    assert 0.0 <= summary["base_accuracy"] <= 1.0
    assert summary["tuned_accuracy"] >= summary["base_accuracy"] + 0.3


@pytest.mark.usefixtures("socket_backend")
def test_azure_demo_says_it_deploys_then_undeploys(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("azure.core")
    code = main(["demo", "--azure", "--tier", "developer", "--no-progress"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "developer tier" in out
    assert "hosting ~$" in out
    assert "estimate" in out
    assert (
        out.index("deploy    finetune-kit-demo")
        < out.index("evaluate")
        < out.index("undeploy  finetune-kit-demo")
    )


def test_azure_demo_refuses_a_tier_the_model_lacks(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--azure", "--model", "gpt-oss-20b", "--tier", "standard", "--json"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "does not offer the 'standard' training tier" in err
    assert out == ""
