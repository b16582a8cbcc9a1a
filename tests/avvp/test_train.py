"""The AVVP training loop: checkpoint choice, resume after a kill."""

from pathlib import Path

import pytest
import torch

from pipeline.avvp import train as train_module
from pipeline.avvp.train import fit_avvp, load_data
from pipeline.models.han import HAN
from pipeline.training.resume import ResumeFile
from tests.avvp.test_refine import CONFIG


def test_equal_validation_scores_keep_the_later_epoch(tiny_llp: Path):
    # lr 0: the weights never move, so every epoch scores the same on val; Tian et al.'s
    # official code (`if F >= best_F`) then saves the last epoch
    torch.manual_seed(0)
    device = torch.device("cpu")
    train, val = load_data(tiny_llp, "train"), load_data(tiny_llp, "val")
    model = HAN(**train.dims(), hidden=16, feedforward=16)
    result = fit_avvp(model, train, val, dict(CONFIG, epochs=3, lr=0.0), device)
    scores = [row["val_type_segment"] for row in result.history]
    assert scores == [scores[0]] * 3
    assert result.best_epoch == 3


class Killed(Exception):
    """Stands for a SIGKILL between two epochs."""


def test_a_killed_run_resumes_after_its_last_epoch_and_ends_as_an_unbroken_one(
    tiny_llp: Path, tmp_path: Path, monkeypatch
):
    device = torch.device("cpu")
    train, val = load_data(tiny_llp, "train"), load_data(tiny_llp, "val")
    config = dict(CONFIG, epochs=4)

    def run(resume=None, on_epoch=None):
        torch.manual_seed(0)
        model = HAN(**train.dims(), hidden=16, feedforward=16)
        return fit_avvp(model, train, val, config, device, on_epoch=on_epoch, resume=resume)

    unbroken = run()

    def kill_in_epoch_3(row):
        if row["epoch"] == 3:
            raise Killed

    state = ResumeFile(tmp_path / "avvp_han.pt", key="this run")
    with pytest.raises(Killed):
        run(state, kill_in_epoch_3)
    evaluated = []
    original = train_module.evaluate_avvp
    monkeypatch.setattr(
        train_module, "evaluate_avvp", lambda *a, **k: evaluated.append(1) or original(*a, **k)
    )
    logged = []
    resumed = run(state, lambda row: logged.append(row["epoch"]))
    assert len(evaluated) == 2  # epochs 3 and 4 ran; 1 and 2 came from the state
    assert logged == [1, 2, 3, 4]  # the first two replayed from the state
    assert resumed.history == unbroken.history
    assert resumed.best_epoch == unbroken.best_epoch
    for key, value in unbroken.best_state.items():
        assert torch.equal(resumed.best_state[key], value), key
    # a state of another run (another key) is ignored: all four epochs run again
    evaluated.clear()
    run(ResumeFile(tmp_path / "avvp_han.pt", key="another run"))
    assert len(evaluated) == 4


def test_the_precision_setting_runs_the_steps_under_autocast(tiny_llp: Path):
    device = torch.device("cpu")
    train, val = load_data(tiny_llp, "train"), load_data(tiny_llp, "val")
    states = {}
    for precision in ("fp32", "bf16", "fp16"):
        torch.manual_seed(0)
        model = HAN(**train.dims(), hidden=16, feedforward=16)
        result = fit_avvp(model, train, val, dict(CONFIG, epochs=1), device, precision=precision)
        assert all(torch.isfinite(v).all() for v in model.state_dict().values())
        assert torch.isfinite(torch.tensor(result.history[0]["train_loss"]))
        states[precision] = model.audio_proj.weight.detach().clone()
    # bf16 matrix products round the steps: the weights move elsewhere than in fp32
    assert not torch.equal(states["fp32"], states["bf16"])
