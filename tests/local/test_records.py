"""The records' API views: derived from their fields, bookkeeping kept out."""

from __future__ import annotations

import dataclasses

from finetune_kit.local._records import (
    BATCH_PHASES,
    BatchRecord,
    CheckpointRecord,
    JobRecord,
    UploadRecord,
)


def _job(**changes: object) -> JobRecord:
    job = JobRecord(
        id="ftjob-1",
        created_at=10,
        model="gpt-4o-mini",
        method={"type": "supervised"},
        seed=1,
        training_file="file-1",
        validation_file=None,
        suffix="mine",
        metadata=None,
        integrations=None,
        hyperparameters=None,
    )
    return dataclasses.replace(job, **changes)  # type: ignore[arg-type]


def test_internal_fields_stay_out_and_renamed_fields_use_the_apis_names() -> None:
    view = _job(phase_start=5.0, revealed=3, total=9).to_api()
    assert list(view)[:2] == ["id", "object"]  # the service's order
    assert view["object"] == "fine_tuning.job"
    assert view["user_provided_suffix"] == "mine"
    assert view["organization_id"] == "org-local"
    for internal in ("suffix", "azure", "training_type", "phase_start", "revealed", "total"):
        assert internal not in view
    assert "trainingType" not in view
    assert _job(azure=True, training_type="global").to_api()["trainingType"] == "global"
    ckpt = CheckpointRecord("ckpt-1", "ftjob-1", 20, "ft:x:ckpt-step-3", 3, {"train_loss": 1.0})
    assert ckpt.to_api() == {
        "id": "ckpt-1",
        "object": "fine_tuning.job.checkpoint",
        "fine_tuning_job_id": "ftjob-1",
        "created_at": 20,
        "fine_tuned_model_checkpoint": "ft:x:ckpt-step-3",
        "step_number": 3,
        "metrics": {"train_loss": 1.0},
    }


def test_the_api_view_does_not_alias_the_record() -> None:
    upload = UploadRecord("upload-1", 3, 10, 20, "a.jsonl", "fine-tune", "text/jsonl")
    upload.parts.append("part-1")
    view = upload.to_api()
    assert "parts" not in view
    assert "mime_type" not in view
    job = _job(result_files=["file-2"])
    job.to_api()["result_files"].append("file-3")
    assert job.result_files == ["file-2"]


def test_a_batch_reports_when_each_phase_began() -> None:
    batch = BatchRecord("batch_1", "file-1", 100, None)
    assert all(batch.to_api()[f"{phase}_at"] is None for phase in BATCH_PHASES)
    batch.enter("in_progress", 160.7)
    batch.enter("failed", 170)
    view = batch.to_api()
    assert (view["status"], view["in_progress_at"], view["failed_at"]) == ("failed", 160, 170)
    assert view["completed_at"] is None
    assert view["expires_at"] == 100 + 86_400
    assert "began" not in view
    assert BatchRecord.from_doc(batch.to_doc()).to_api() == view
