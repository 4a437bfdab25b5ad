"""`finetune-kit train/status/wait/cancel` against the fake service, client from the env."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from typing import TYPE_CHECKING, Any

import pytest

from finetune_kit import Dataset, default_session, set_default_session
from finetune_kit._core import client as client_module
from finetune_kit.cli._main import build_parser, main

from .fake_openai import BASE_URL, FakeFiles, FakeJobs, Fault, error_response, event_json, job_json

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import respx

    from finetune_kit.facts._endpoints import EndpointKind


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


pytestmark = pytest.mark.usefixtures("pinned_today")


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    client_module._reset_defaults()
    yield
    client_module._reset_defaults()


@pytest.fixture
def train_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.jsonl"
    texts = [f"my card was charged twice, case {i}" for i in range(20)]
    Dataset.from_labels(texts, ["billing"] * 10 + ["other"] * 10).to_jsonl(path)
    return path


@pytest.fixture(autouse=True)
def _no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stdin is not a terminal unless a test says otherwise (see :func:`_answer`): a command
    that asks must never read the real stdin."""
    monkeypatch.setattr("sys.stdin", io.StringIO(""))


def _answer(monkeypatch: pytest.MonkeyPatch, reply: str) -> None:
    """Stdin is a terminal where the person answers ``reply`` to the question."""
    monkeypatch.setattr("sys.stdin", _Terminal(f"{reply}\n"))


def test_train_refuses_without_a_terminal_or_yes(
    api: respx.Router, train_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", str(train_file), "--model", "gpt-4o-mini"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "--yes" in err
    assert "trained tokens" in out  # the estimate was shown first
    assert "$" in out
    assert not api.calls


def test_train_asks_and_respects_no(
    api: respx.Router,
    train_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _answer(monkeypatch, "n")
    assert main(["train", str(train_file), "--model", "gpt-4o-mini"]) == 1
    assert "Start fine-tuning gpt-4o-mini" in capsys.readouterr().err
    assert not api.calls


def test_train_after_yes_uploads_and_creates(
    fake: FakeJobs,
    files: FakeFiles,
    train_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _answer(monkeypatch, "y")
    code = main(
        ["train", str(train_file), "--model", "gpt-4o-mini", "--epochs", "2", "--suffix", "t"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "started ftjob-1" in out
    assert "finetune-kit wait ftjob-1" in out
    [body] = fake.created
    assert body["training_file"] == files.files[0]["id"]
    assert body["method"]["supervised"]["hyperparameters"] == {"n_epochs": 2}
    assert body["suffix"] == "t"


def test_train_yes_and_wait(
    fake: FakeJobs, files: FakeFiles, train_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def finish(job: dict[str, Any], calls: int) -> None:
        del calls
        job["status"] = "succeeded"
        job["fine_tuned_model"] = "ft:gpt-4o-mini:org:t:abc"

    fake.on_retrieve = finish
    args = ["train", str(train_file), "-m", "gpt-4o-mini", "--yes", "--wait", "--no-progress"]
    assert main(args) == 0
    assert capsys.readouterr().out.endswith("ft:gpt-4o-mini:org:t:abc\n")
    assert len(files.files) == 1


def test_train_with_invalid_data_exits_1(
    api: respx.Router, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    assert main(["train", str(path), "--model", "gpt-4o-mini", "--yes"]) == 1
    assert "has errors" in capsys.readouterr().err
    assert not api.calls


def test_train_with_a_missing_file_exits_2(
    api: respx.Router, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", str(tmp_path / "nope.jsonl"), "--model", "gpt-4o-mini"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not api.calls


@pytest.mark.usefixtures("openai_endpoint")
def test_train_refused_by_the_service(
    fake: FakeJobs, files: FakeFiles, train_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.faults["create"] = [Fault(response=error_response(403, message="not allowed"))]
    assert main(["train", str(train_file), "--model", "gpt-4o-mini", "--yes"]) == 1
    err = capsys.readouterr().err
    assert "2027-01-06" in err
    assert "Azure OpenAI" in err
    del files


def test_train_without_an_api_key_exits_2(
    api: respx.Router,
    train_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    client_module._reset_defaults()
    assert main(["train", str(train_file), "--model", "gpt-4o-mini", "--yes"]) == 2
    assert "api_key" in capsys.readouterr().err
    assert not api.calls


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        ("succeeded", None, 0),
        ("failed", {"code": "invalid_file", "message": "bad line 3", "param": "training_file"}, 1),
        ("cancelled", None, 1),
    ],
)
def test_wait_exit_codes(
    fake: FakeJobs,
    capsys: pytest.CaptureFixture[str],
    status: str,
    error: dict[str, Any] | None,
    code: int,
) -> None:
    model = "ft:gpt-4o-mini:org::x" if status == "succeeded" else None
    fake.add(job_json(status=status, error=error, fine_tuned_model=model))
    assert main(["wait", "ftjob-1", "--no-progress"]) == code
    out, err = capsys.readouterr()
    if code == 0:
        assert out == "ft:gpt-4o-mini:org::x\n"
    else:
        assert status in err
    if error:
        assert "invalid_file: bad line 3" in err


def test_wait_timeout_exits_3(fake: FakeJobs, capsys: pytest.CaptureFixture[str]) -> None:
    fake.add(job_json(status="running"))
    assert main(["wait", "ftjob-1", "--timeout", "0", "--no-progress"]) == 3
    assert "keeps running" in capsys.readouterr().err


def test_wait_unknown_job(fake: FakeJobs, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wait", "ftjob-nope"]) == 1
    assert "no fine-tuning job 'ftjob-nope'" in capsys.readouterr().err
    del fake


def test_status_shows_state_error_and_events(
    fake: FakeJobs, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [event_json(f"e{i}", 1_800_000_000 + i, f"message {i}") for i in range(8)]
    fake.add(
        job_json(
            status="failed",
            error={"code": "invalid_n_examples", "message": "too few", "param": "training_file"},
            trained_tokens=1500,
        ),
        list(reversed(events)),
    )
    assert main(["status", "ftjob-1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ftjob-1: failed\n")
    assert "invalid_n_examples: too few (param training_file)" in out
    assert "1,500" in out
    assert "message 7" in out
    assert "message 2" not in out  # only the latest five


def test_cancel(fake: FakeJobs, capsys: pytest.CaptureFixture[str]) -> None:
    fake.add(job_json(status="running"))
    assert main(["cancel", "ftjob-1"]) == 0
    assert capsys.readouterr().out == "ftjob-1: cancelled\n"
    assert fake.jobs["ftjob-1"]["status"] == "cancelled"


def test_ctrl_c_while_waiting_exits_130_and_says_how_to_resume(
    fake: FakeJobs,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt(f"Ctrl-C during a {seconds}s wait")

    fake.add(job_json(status="running"))
    monkeypatch.setattr("time.sleep", interrupt)
    with caplog.at_level(logging.WARNING, logger="finetune_kit"):
        assert main(["wait", "ftjob-1", "--no-progress"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert "Job.get('ftjob-1').wait()" in caplog.text
    assert fake.jobs["ftjob-1"]["status"] == "running"


def test_train_refuses_a_bad_option_before_asking_or_sending(
    api: respx.Router, train_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", str(train_file), "--model", "gpt-4o-mini", "--suffix", "x" * 65, "--yes"]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert "suffix must be 1 to 64 characters" in err
    assert "trained tokens" not in out  # refused before the estimate and the question
    assert not api.calls


def test_wait_refuses_a_poll_interval_that_is_not_positive(
    api: respx.Router, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["wait", "ftjob-1", "--poll-interval", "0"])
    assert info.value.code == 2
    assert "must be a positive number of seconds" in capsys.readouterr().err
    assert not api.calls


@contextlib.contextmanager
def _endpoint(kind: EndpointKind) -> Iterator[None]:
    """The default session says the endpoint is of this kind, for the duration."""
    previous = set_default_session(default_session().with_options(endpoint=kind))
    try:
        yield
    finally:
        set_default_session(previous)


@pytest.mark.usefixtures("files")
def test_train_sends_the_tier_on_azure(
    fake: FakeJobs, train_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The mocked endpoint counts as Azure OpenAI (as *.openai.azure.com would).
    with _endpoint("azure"):
        args = ["train", str(train_file), "-m", "gpt-4o-mini-2024-07-18", "--tier", "global"]
        assert main([*args, "--yes"]) == 0
    assert fake.created[0]["trainingType"] == "GlobalStandard"
    assert "started ftjob-" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("endpoint", "model", "tier", "message"),
    [
        ("other", "gpt-4o-mini", "global", "Azure OpenAI option"),
        ("azure", "gpt-oss-20b", "developer", "does not offer the 'developer' training tier"),
    ],
)
def test_train_refuses_a_tier_before_asking_or_sending(
    api: respx.Router,
    train_file: Path,
    capsys: pytest.CaptureFixture[str],
    endpoint: EndpointKind,
    model: str,
    tier: str,
    message: str,
) -> None:
    with _endpoint(endpoint):
        assert main(["train", str(train_file), "-m", model, "--tier", tier]) == 2
    out, err = capsys.readouterr()
    assert message in err
    assert "trained tokens" not in out
    assert not api.calls


def test_train_rejects_an_unknown_tier(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "x.jsonl", "-m", "gpt-4o-mini", "--tier", "GlobalStandard"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "t.jsonl", "--model", "m"],
        ["deploy", "m", "--subscription", "s", "--resource-group", "g", "--account", "a"],
        ["demo"],
    ],
    ids=["train", "deploy", "demo"],
)
def test_every_command_that_spends_money_takes_yes_and_y(argv: list[str]) -> None:
    parser = build_parser()
    assert not parser.parse_args(argv).yes
    assert parser.parse_args([*argv, "--yes"]).yes
    assert parser.parse_args([*argv, "-y"]).yes
