"""Checkpoints rebuild the same model and refuse anything that is not one."""

import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.models import build_model
from pipeline.training.checkpoint import load_checkpoint, save_checkpoint

KWARGS = {"audio_dim": 4, "visual_dim": 6, "n_regions": 4, "hidden": 3, "attention_dim": 2}


def test_round_trip_rebuilds_an_identical_model(tmp_path):
    torch.manual_seed(0)
    model = build_model("ave", **KWARGS)
    path = tmp_path / "m.pt"
    save_checkpoint(path, model.state_dict(), "ave", KWARGS, epoch=7, val_accuracy=0.5)
    loaded, meta = load_checkpoint(path, torch.device("cpu"))
    assert meta == {"name": "ave", "kwargs": KWARGS, "epoch": 7, "val_accuracy": 0.5}
    audio, visual = torch.randn(2, 10, 4), torch.randn(2, 10, 2, 2, 6)
    model.eval()
    assert torch.equal(loaded(audio, visual), model(audio, visual))
    assert not loaded.training
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temp file left


def test_the_same_checkpoint_saved_twice_has_the_same_bytes(tmp_path):
    torch.manual_seed(0)
    state = build_model("ave", **KWARGS).state_dict()
    for path in (tmp_path / "a" / "sel.pt", tmp_path / "b" / "other name.pt"):
        save_checkpoint(path, state, "ave", KWARGS, epoch=3, val_accuracy=0.25)
    first, second = (
        (tmp_path / "a" / "sel.pt").read_bytes(),
        (tmp_path / "b" / "other name.pt").read_bytes(),
    )
    assert first == second  # neither the temporary nor the final file name is inside


def test_missing_and_foreign_files_are_clear_errors(tmp_path):
    with pytest.raises(PipelineError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt", torch.device("cpu"))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(PipelineError, match="garbage.pt: not a readable checkpoint"):
        load_checkpoint(garbage, torch.device("cpu"))
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(1)}, plain)
    with pytest.raises(PipelineError, match="expected a checkpoint with name, kwargs and state"):
        load_checkpoint(plain, torch.device("cpu"))


def test_arbitrary_pickles_are_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "evil.pt"
    torch.save({"name": "ave", "kwargs": {}, "state": Payload()}, path)
    with pytest.raises(PipelineError, match="not a readable checkpoint"):
        load_checkpoint(path, torch.device("cpu"))
