"""`finetune-kit deploy` / `undeploy` against the ARM-shaped service on loopback."""

from __future__ import annotations

import datetime as dt
import io
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("azure.core")
pytest.importorskip("aiohttp")
pytest.importorskip("uvicorn")

from finetune_kit import default_session, estimate_hosting_cost, set_default_session
from finetune_kit.cli._main import main
from finetune_kit.local import ManualClock

from .arm_service import MODEL, Service, StaticToken, serve

if TYPE_CHECKING:
    from collections.abc import Iterator


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def _server() -> Iterator[Service]:
    with serve() as service:
        yield service


@pytest.fixture
def service(_server: Service, monkeypatch: pytest.MonkeyPatch) -> Service:
    # Ready at once: the command polls on the real clock, and tests never wait.
    monkeypatch.setattr(_server.arm, "_provisioning", 0)
    monkeypatch.setattr(
        "finetune_kit.models._deployments._default_credential", lambda **_: StaticToken()
    )
    return _server.reset()


def _args(service: Service, *extra: str) -> list[str]:
    return [
        *extra,
        "--subscription",
        "sub-1",
        "--resource-group",
        "rg-1",
        "--account",
        "acct-1",
        "--management-url",
        f"http://127.0.0.1:{service.port}",
    ]


def test_deploy_shows_the_cost_then_refuses_without_a_terminal(
    service: Service, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(_args(service, "deploy", MODEL)) == 2
    out, err = capsys.readouterr()
    assert str(estimate_hosting_cost(MODEL)) in out
    assert "/day" in out
    assert "15 days" in out
    assert "--yes" in err
    assert service.faults.seen == []


def test_deploy_asks_and_respects_no(
    service: Service, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    assert main(_args(service, "deploy", MODEL, "--name", "pets")) == 1
    out, err = capsys.readouterr()
    assert "$" in out
    assert f"Deploy {MODEL} as 'pets' on acct-1" in err
    assert service.faults.seen == []


def test_deploy_after_yes_then_undeploy(
    service: Service, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    assert main(_args(service, "deploy", MODEL, "--name", "pets", "--sku", "GlobalStandard")) == 0
    out, err = capsys.readouterr()
    assert "deploying pets" in err  # the progress bar
    assert "deployment pets" in out
    assert "Succeeded" in out
    assert "finetune-kit undeploy pets" in out
    [doc] = service.arm.list(("sub-1", "rg-1", "acct-1"))
    assert doc["sku"]["name"] == "GlobalStandard"

    assert main(_args(service, "undeploy", "pets")) == 0
    assert "deleted deployment pets" in capsys.readouterr().out
    assert service.count() == 0
    assert main(_args(service, "undeploy", "pets")) == 0
    assert "nothing to delete" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("status", "code", "hint"),
    [
        (403, "AuthorizationFailed", "deployments/write"),
        (409, "InsufficientQuota", "quota"),
        (400, "LocationNotSupported", "region"),
    ],
)
def test_refusals_are_explained_without_a_traceback(
    service: Service, capsys: pytest.CaptureFixture[str], status: int, code: str, hint: str
) -> None:
    service.faults.refusals = [("PUT", status, code)]
    assert main(_args(service, "deploy", MODEL, "--yes", "--no-progress")) == 1
    err = capsys.readouterr().err
    assert err.startswith("finetune-kit deploy: ")
    assert code in err
    assert hint in err
    assert "Traceback" not in err
    assert service.count() == 0


def test_undeploy_refusal_is_explained(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    service.faults.refusals = [("GET", 403, "AuthorizationFailed")]
    assert main(_args(service, "undeploy", "pets")) == 1
    assert "AuthorizationFailed" in capsys.readouterr().err


def test_unknown_model_is_refused(service: Service, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_args(service, "deploy", "llama-unknown", "--yes")) == 1
    out, err = capsys.readouterr()
    assert "price unknown" in out
    assert "DeploymentModelNotFound" in err


def test_without_the_extra_the_command_names_it(
    service: Service, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    for name in [m for m in sys.modules if m == "azure.core" or m.startswith("azure.core.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "azure.core", None)
    assert main(_args(service, "deploy", MODEL, "--yes")) == 2
    assert "finetune-kit[azure]" in capsys.readouterr().err


def test_developer_tier_shows_no_hourly_charge(
    service: Service, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(_args(service, "deploy", MODEL, "--sku", "DeveloperTier")) == 2
    out = capsys.readouterr().out
    assert "no hourly charge" in out
    assert "/hour" not in out


def test_reusing_an_old_deployment_prints_the_idle_warning(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_args(service, "deploy", MODEL, "--yes", "--no-progress")) == 0
    service.faults.system_data = {"lastModifiedAt": "2027-01-01T00:00:00Z"}
    previous = default_session()
    day = dt.datetime(2027, 1, 15, tzinfo=dt.timezone.utc).timestamp()
    set_default_session(previous.with_options(clock=ManualClock(day)))
    try:
        assert main(_args(service, "deploy", MODEL, "--yes", "--no-progress")) == 0
    finally:
        set_default_session(previous)
    err = capsys.readouterr().err
    assert "warning: deployment" in err
    assert "from 2027-01-16" in err
    assert service.faults.seen.count("PUT") == 1  # reused, not redeployed
