"""``finetune-kit serve``."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import openai
import pytest

from finetune_kit.cli._main import main

if TYPE_CHECKING:
    from pathlib import Path


def test_serve_runs_a_usable_server(tmp_path: Path) -> None:
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from finetune_kit.cli._main import main; sys.exit(main(sys.argv[1:]))",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
            "--api-key",
            "sk-cli-test",
            "--faults",
            "429@GET:/models,first=1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        try:
            first = proc.stdout.readline()
            assert first.startswith("Local backend listening on http://127.0.0.1:")
            url = first.split(" on ", 1)[1].strip()
            assert url.endswith("/v1")
            client = openai.OpenAI(api_key="sk-cli-test", base_url=url, max_retries=0)
            with pytest.raises(openai.RateLimitError):
                client.models.list()
            assert client.models.list().data
            assert (tmp_path / "state.sqlite3").exists()
            client.close()
        finally:
            proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "sk-cli-test" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--faults", "boom@/x"],
        ["serve", "--host", "0.0.0.0"],
        ["serve", "--speed", "0"],
    ],
)
def test_serve_usage_errors_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FINETUNE_KIT_LOCAL_API_KEY", raising=False)
    assert main(argv) == 2
    assert "finetune-kit serve:" in capsys.readouterr().err
