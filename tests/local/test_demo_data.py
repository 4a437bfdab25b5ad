"""The bundled demo dataset: licence notes present, learnable, and a tuned model beats base."""

from __future__ import annotations

from collections import Counter
from importlib import resources

from finetune_kit.local import LocalServer, ManualClock

from .helpers import LABELS, SYSTEM, chat_line, demo_rows, jsonl, stratified_split, upload


def test_dataset_shape_and_provenance() -> None:
    rows = demo_rows()
    assert len(rows) >= 500
    counts = Counter(label for _, label in rows)
    assert set(counts) == set(LABELS)
    assert min(counts.values()) >= 40
    assert len({text for text, _ in rows}) == len(rows)  # no duplicate texts
    folder = resources.files("finetune_kit") / "data" / "demo"
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "BSD" in readme
    assert "chatterbot-corpus" in readme
    assert (folder / "chatbot_topics.csv").read_bytes().__len__() < 1_000_000


def test_tuned_model_clearly_beats_base_on_held_out_split() -> None:
    train, test = stratified_split(demo_rows(), test_fraction=0.2, seed=0)
    clock = ManualClock()
    with LocalServer(clock=clock, in_process=True) as server:
        client = server.client(max_retries=0)
        job = client.fine_tuning.jobs.create(
            model="gpt-4o-mini",
            training_file=upload(client, jsonl([chat_line(t, label) for t, label in train])),
            seed=0,
        )
        clock.advance(3600)
        job = client.fine_tuning.jobs.retrieve(job.id)
        assert job.status == "succeeded"

        def accuracy(model: str) -> float:
            right = 0
            for text, label in test:
                reply = client.chat.completions.create(
                    model=model,
                    messages=[
                        {"role": "system", "content": SYSTEM},
                        {"role": "user", "content": text},
                    ],
                    temperature=0,
                )
                right += reply.choices[0].message.content == label
            return right / len(test)

        base = accuracy("gpt-4o-mini")
        tuned = accuracy(str(job.fine_tuned_model))
    assert base < 0.4
    assert tuned > 0.75
    assert tuned > base + 0.4
