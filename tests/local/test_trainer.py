"""The built-in trainer: it learns, reports real metrics, is deterministic, saves and loads."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from finetune_kit.facts._jobs import STEP_METRICS
from finetune_kit.local._trainer import (
    Hyperparameters,
    LinearModel,
    LinearTrainer,
    StepMetrics,
    TrainingExample,
    TrainingRun,
    features,
    ngram_features,
    train,
)
from finetune_kit.local._trainer_types import AnswerModel, Trainer

SYSTEM = "Say which kind of word this is."
# Made-up words: a model that reads whole words cannot know the held-out ones; their
# endings (character n-grams) give the answer away.
STEMS = ["blor", "quen", "tavv", "mirk", "zodd", "plim", "grast", "vuun", "kelb", "snor"]
HELD_OUT = ["frob", "wemp", "dralk"]


def _suffix_examples(stems: list[str]) -> list[TrainingExample]:
    out: list[TrainingExample] = []
    for stem in stems:
        out.append(TrainingExample(f"{SYSTEM}\n{stem}ing", "verb"))
        out.append(TrainingExample(f"{SYSTEM}\n{stem}ness", "noun"))
    return out


def _best(model: LinearModel, text: str) -> str:
    probs = model.probabilities(text)
    return model.answers[max(range(len(probs)), key=probs.__getitem__)]


def _mean_loss(model: LinearModel, examples: list[TrainingExample]) -> float:
    index = {a: i for i, a in enumerate(model.answers)}
    return sum(
        -math.log(model.probabilities(ex.context)[index[ex.answer]]) for ex in examples
    ) / len(examples)


def test_learns_unseen_words_from_their_spelling() -> None:
    run = train(_suffix_examples(STEMS), n_epochs=5, batch_size=2, seed=3)
    for stem in HELD_OUT:
        assert _best(run.model, f"{SYSTEM}\n{stem}ing") == "verb"
        assert _best(run.model, f"{SYSTEM}\n{stem}ness") == "noun"
    # Without character n-grams the held-out words are unknown and nothing is learned.
    words_only = LinearTrainer(char_ngrams=(1, 0)).train(
        _suffix_examples(STEMS), hyperparameters=Hyperparameters(5, 2), seed=3
    )
    model = words_only.model
    verb, noun = (f"{SYSTEM}\n{HELD_OUT[0]}{end}" for end in ("ing", "ness"))
    assert model.probabilities(verb) == model.probabilities(noun)


def test_learns_a_separable_problem_from_zero_and_the_loss_falls() -> None:
    data = [TrainingExample(f"tell me about {w}", "animal") for w in ("cats", "dogs", "owls")]
    data += [TrainingExample(f"add {a} and {b}", "math") for a, b in ("12", "34", "56")]
    run = LinearTrainer(nb_init=False).train(data, hyperparameters=Hyperparameters(20, 1), seed=1)
    assert run.steps[0].train_loss == pytest.approx(math.log(2))
    assert run.steps[-1].train_loss < 0.2
    assert _best(run.model, "tell me about horses") == "animal"
    assert _best(run.model, "add 7 and 8") == "math"
    assert [s.step for s in run.steps] == list(range(1, 121))
    assert run.epoch_ends == list(range(6, 121, 6))


def test_train_loss_is_the_real_loss_before_the_update() -> None:
    data = _suffix_examples(STEMS)
    trainer = LinearTrainer(nb_init=False)
    # One full-batch step per epoch: epoch 1's snapshot is the model step 2 starts from.
    run = trainer.train(data, hyperparameters=Hyperparameters(2, len(data)), seed=0)
    assert run.steps[0].train_loss == pytest.approx(math.log(2))
    assert run.steps[1].train_loss == pytest.approx(_mean_loss(run.snapshots[1], data), rel=1e-5)
    assert run.steps[1].train_loss < run.steps[0].train_loss


def test_validation_metrics_per_step_and_full_at_epoch_ends() -> None:
    data = _suffix_examples(STEMS)
    valid = _suffix_examples(HELD_OUT)
    run = train(data, validation=valid, n_epochs=3, batch_size=4, seed=0)
    for metrics in run.steps:
        assert metrics.valid_loss is not None
        assert metrics.valid_mean_token_accuracy is not None
        at_end = metrics.step in run.epoch_ends
        assert (metrics.full_valid_loss is not None) is at_end
        assert (metrics.full_valid_mean_token_accuracy is not None) is at_end
    last = run.steps[-1]
    assert last.full_valid_mean_token_accuracy == 1.0
    assert last.full_valid_loss == pytest.approx(_mean_loss(run.model, valid), rel=1e-4)
    assert set(last.to_json()) == {"step", *STEP_METRICS}
    plain = train(data, n_epochs=1, batch_size=4, seed=0)
    assert all(s.valid_loss is None and s.full_valid_loss is None for s in plain.steps)


def test_a_validation_answer_never_learned_counts_as_wrong() -> None:
    valid = [TrainingExample(f"{SYSTEM}\nblorly", "adverb")]
    run = train(_suffix_examples(STEMS), validation=valid, n_epochs=1, batch_size=20, seed=0)
    assert run.steps[-1].full_valid_mean_token_accuracy == 0.0
    assert run.steps[-1].full_valid_loss == 20.0


def test_on_step_sees_every_step_in_order_and_can_stop_training() -> None:
    seen: list[StepMetrics] = []
    run = train(_suffix_examples(STEMS), n_epochs=2, batch_size=3, seed=0, on_step=seen.append)
    assert seen == run.steps

    class Stop(Exception):
        """What the caller raises from on_step to stop training."""

    def stop_at_3(metrics: StepMetrics) -> None:
        if metrics.step == 3:
            raise Stop

    with pytest.raises(Stop):
        train(_suffix_examples(STEMS), n_epochs=2, batch_size=3, seed=0, on_step=stop_at_3)


def test_deterministic_for_a_seed_and_seed_dependent() -> None:
    data = _suffix_examples(STEMS)
    a = train(data, n_epochs=2, batch_size=3, seed=5)
    b = train(data, n_epochs=2, batch_size=3, seed=5)
    c = train(data, n_epochs=2, batch_size=3, seed=6)
    assert a.steps == b.steps
    assert a.model.to_json() == b.model.to_json()
    assert [s.train_loss for s in a.steps] != [s.train_loss for s in c.steps]


_CHILD = """
import json, sys
sys.path.insert(0, {root!r})
from finetune_kit.local._trainer import TrainingExample, train
data = [TrainingExample(c, a) for c, a in json.loads(sys.stdin.read())]
run = train(data, n_epochs=2, batch_size=3, seed=5)
print(json.dumps(run.model.to_json(), sort_keys=True))
"""


def test_same_model_in_a_process_with_another_hash_seed() -> None:
    examples = _suffix_examples(STEMS)
    data = json.dumps([[ex.context, ex.answer] for ex in examples])
    root = str(Path(__file__).resolve().parents[2])
    # This process's hash seed is random (or whatever the runner set): "12345" differs.
    out = subprocess.run(
        [sys.executable, "-c", _CHILD.format(root=root)],
        input=data,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    here = train(examples, n_epochs=2, batch_size=3, seed=5).model.to_json()
    assert json.loads(out.stdout) == json.loads(json.dumps(here))


def test_parallel_runs_in_threads_match_serial_runs() -> None:
    data = _suffix_examples(STEMS)
    seeds = [1, 2, 3, 4]
    serial = {s: train(data, n_epochs=2, batch_size=2, seed=s).model.to_json() for s in seeds}
    parallel: dict[int, dict[str, object]] = {}

    def work(seed: int) -> None:
        parallel[seed] = train(data, n_epochs=2, batch_size=2, seed=seed).model.to_json()

    threads = [threading.Thread(target=work, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert parallel == serial


def test_to_json_from_json_round_trip_answers_identically() -> None:
    run = train(_suffix_examples(STEMS), n_epochs=2, batch_size=3, seed=0)
    saved = json.loads(json.dumps(run.model.to_json()))
    loaded = LinearModel.from_json(saved)
    assert loaded == run.model
    for text in (f"{SYSTEM}\nfrobing", "no newline at all", "", "Extra\nlines\nwemp ness"):
        assert loaded.probabilities(text) == run.model.probabilities(text)
    assert loaded.to_json() == saved
    for step, snapshot in run.snapshots.items():
        assert LinearModel.from_json(snapshot.to_json()) == snapshot, step
    assert LinearTrainer().load_model(saved) == run.model
    with pytest.raises(ValueError, match="format"):
        LinearModel.from_json({**saved, "format": 99})


def test_models_saved_by_earlier_versions_still_load_and_answer() -> None:
    legacy = {"answers": ["no", "yes"], "weights": {"great": [-1.0, 1.0], "<bias>": [0.5, 0.0]}}
    model = LinearModel.from_json(legacy)
    assert model.featurizer == "words"
    scale = 1 / math.sqrt(len(features("great")))
    assert model.logits("great") == pytest.approx([(-1.0 + 0.5) * scale, 1.0 * scale])
    assert model.to_json() == legacy


def test_prepended_instructions_do_not_change_the_answer() -> None:
    run = train(_suffix_examples(STEMS), n_epochs=3, batch_size=2, seed=0)
    plain = run.model.probabilities(f"{SYSTEM}\nfrobness")
    noisy = f"Reply with one of: verb, noun. Nouns end in -ing!\n{SYSTEM}\nfrobness"
    assert run.model.probabilities(noisy) == pytest.approx(plain)
    assert _best(run.model, noisy) == "noun"


def test_ngram_features_read_the_last_line_apart_from_earlier_ones() -> None:
    names = ngram_features("Hi there\nab", char_ngrams=(2, 2), word_ngrams=(1, 1))
    assert names == sorted(names)
    assert {"c a", "cab", "cb ", "wab"} <= set(names)
    assert {"Chi", "Wthere"} <= set(names)
    assert not any(n.startswith(("c", "w")) and "hi" in n for n in names)
    assert ngram_features("x", char_ngrams=(1, 0), word_ngrams=(1, 0)) == []


def test_shared_prompt_features_are_dropped_and_the_model_size_is_bounded() -> None:
    data = _suffix_examples(STEMS)
    run = train(data, n_epochs=1, batch_size=4, seed=0)
    assert not any(name.startswith(("C", "W")) for name in run.model.weights)
    small = LinearTrainer(max_features=30).train(
        data, hyperparameters=Hyperparameters(1, 4), seed=0
    )
    assert len(small.model.weights) == 31  # the 30 most frequent features and the bias


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one example"):
        train([], n_epochs=1, batch_size=1)
    with pytest.raises(ValueError, match="n_epochs"):
        Hyperparameters(0, 1)
    with pytest.raises(ValueError, match="n_epochs"):
        Hyperparameters(1, 1, learning_rate_multiplier=0.0)


def _takes_a_trainer(trainer: Trainer[AnswerModel], data: list[TrainingExample]) -> AnswerModel:
    run: TrainingRun[AnswerModel] = trainer.train(
        data, validation=(), hyperparameters=Hyperparameters(1, 4), seed=0
    )
    return trainer.load_model(run.model.to_json())


def test_the_built_in_trainer_conforms_to_the_protocol() -> None:
    trainer = LinearTrainer()
    assert isinstance(trainer, Trainer)
    model = _takes_a_trainer(trainer, _suffix_examples(STEMS))
    assert isinstance(model, AnswerModel)
    assert isinstance(model, LinearModel)
    assert model.answers == ["noun", "verb"]


def test_step_metrics_are_the_services_step_metrics() -> None:
    # The job's metrics events and checkpoints report StepMetrics under these names.
    assert [f.name for f in dataclasses.fields(StepMetrics)] == ["step", *STEP_METRICS]
