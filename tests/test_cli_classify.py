"""`finetune-kit classify` and `finetune-kit evaluate`."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

import httpx
import pytest

from finetune_kit._core.client import _reset_defaults
from finetune_kit.classification._classify import forget_capabilities
from finetune_kit.cli._main import main

from .fake_openai import BASE_URL, FakeBatchService, bodies, completion

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import respx

LABELS = "positive,negative"


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    _reset_defaults()
    forget_capabilities()
    yield
    _reset_defaults()
    forget_capabilities()


def _answer(request: httpx.Request) -> httpx.Response:
    text = json.loads(request.content)["messages"][-1]["content"]
    if "crash" in text:
        return httpx.Response(400, json={"error": {"message": "bad text", "param": "messages"}})
    label = "negative" if "hate" in text else "positive"
    top = [(label, math.log(0.75)), ("positive" if label == "negative" else "negative", -1.6)]
    return httpx.Response(200, json=completion(label, top=top))


def test_classify_one_text(api: respx.Router, capsys: pytest.CaptureFixture[str]) -> None:
    api.post("/chat/completions").mock(side_effect=_answer)

    code = main(["classify", "--model", "gpt-4o-mini", "--labels", LABELS, "I love it"])

    assert code == 0
    label, confidence, text = capsys.readouterr().out.rstrip("\n").split("\t")
    assert (label, text) == ("positive", "I love it")
    assert float(confidence) == pytest.approx(0.75 / (0.75 + math.exp(-1.6)), abs=1e-3)


def test_classify_a_file_reports_failures(
    api: respx.Router, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.post("/chat/completions").mock(side_effect=_answer)
    path = tmp_path / "texts.txt"
    path.write_text("I love it\n\nI hate it\nthis will crash\n", encoding="utf-8")

    code = main(
        ["classify", "-m", "gpt-4o-mini", "-l", LABELS, "--file", str(path), "--no-progress"]
    )

    assert code == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["positive", "negative", "!error"]
    assert "bad text" in lines[2]


def test_classify_jsonl_as_json_lines(
    api: respx.Router, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    route = api.post("/chat/completions").mock(side_effect=_answer)
    path = tmp_path / "train.jsonl"
    example = {
        "messages": [
            {"role": "user", "content": "I hate mondays"},
            {"role": "assistant", "content": "negative"},
        ]
    }
    path.write_text(json.dumps(example) + "\n" + json.dumps({"text": "yay"}) + "\n")

    code = main(
        ["classify", "-m", "gpt-4o-mini", "-l", LABELS, "-f", str(path), "--json", "--no-progress"]
    )

    assert code == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert (first["index"], first["label"], first["technique"]) == (0, "negative", "logit_bias")
    assert second["label"] == "positive"
    # The training answer is not sent along with the conversation.
    assert bodies(route)[0]["messages"][-1] == {"role": "user", "content": "I hate mondays"}


def test_classify_through_the_batch_api(
    api: respx.Router,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = FakeBatchService(api, polls_until_done=0)  # done at the first poll: no wait
    path = tmp_path / "pets.txt"
    path.write_text("a dog\na cat\n", encoding="utf-8")

    code = main(
        [
            "classify",
            "-m",
            "gpt-4o-mini",
            "-l",
            "cat,dog",
            "-f",
            str(path),
            "--batch",
            "--technique",
            "logit_bias",
            "--no-progress",
        ]
    )

    assert code == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == [
        "dog",
        "cat",
    ]
    assert len(fake.batches) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["classify", "-m", "m", "-l", LABELS],
        ["classify", "-m", "m", "-l", LABELS, "text", "--file", "x.txt"],
        ["classify", "-m", "m", "-l", LABELS, "--file", "/no/such/file.txt"],
        ["classify", "-m", "m", "-l", "onlyone", "text"],
    ],
)
def test_classify_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("finetune-kit classify:")


def test_classify_without_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    _reset_defaults()

    assert main(["classify", "-m", "m", "-l", LABELS, "text"]) == 2
    assert "api_key" in capsys.readouterr().err


def _held_out(tmp_path: Path) -> Path:
    path = tmp_path / "held_out.jsonl"
    rows = [
        {"text": "I love it", "label": "positive"},
        {"text": "I hate it", "label": "negative"},
        {"text": "I hate that I love it", "label": "positive"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_evaluate_prints_the_table(
    api: respx.Router, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.post("/chat/completions").mock(side_effect=_answer)

    code = main(["evaluate", "-m", "gpt-4o-mini", str(_held_out(tmp_path)), "--no-progress"])

    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("Evaluation of gpt-4o-mini on 3 examples\naccuracy 0.667")
    assert "true \\ predicted" in out


def test_evaluate_compares_several_models(
    api: respx.Router, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.post("/chat/completions").mock(side_effect=_answer)
    path = str(_held_out(tmp_path))

    code = main(["evaluate", "-m", "gpt-4o-mini", "-m", "gpt-4o", path, "--no-progress"])

    assert code == 0
    header, examples, accuracy = capsys.readouterr().out.splitlines()[:3]
    assert header.split() == ["gpt-4o-mini", "gpt-4o"]
    assert accuracy.split() == ["accuracy", "0.667", "0.667"]
    assert examples.split() == ["examples", "3", "3"]


def test_evaluate_json_and_bad_files(
    api: respx.Router, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.post("/chat/completions").mock(side_effect=_answer)

    assert main(["evaluate", "-m", "gpt-4o-mini", str(_held_out(tmp_path)), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["accuracy"] == pytest.approx(2 / 3)
    assert payload["labels"] == ["positive", "negative"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "x"}]}\n')
    assert main(["evaluate", "-m", "gpt-4o-mini", str(bad)]) == 2
    assert main(["evaluate", "-m", "gpt-4o-mini", str(tmp_path / "missing.jsonl")]) == 2
