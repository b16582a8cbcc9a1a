"""bench.cmran_attention_course: one row of shares per epoch, measured in eval mode."""

import math

import pytest
import torch
from torch import nn

from bench.cmran_attention_course import recorder, share_row, table
from bench.cmran_audio_paths import attention_on_audio
from pipeline.errors import PipelineError
from pipeline.models.cmran import CMRAN
from tests.models.test_cmran import SMALL


class FakeTrainer:
    """What ``recorded``'s ``run_epoch`` reads of a trainer: its model."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model


def _videos() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return {
        "audio": torch.randn(3, 10, 6, generator=generator),  # (B, T, d_a)
        "visual": torch.rand(3, 10, 2, 2, 8, generator=generator),  # (B, T, 2, 2, d_v)
    }


def _shift_weights(trainer: FakeTrainer, loader, epoch: int) -> float:
    """A stand-in for an epoch: moves every weight, returns a loss of ``epoch / 10``."""
    with torch.no_grad():
        for parameter in trainer.model.parameters():
            parameter.add_(0.05 * epoch)
    return epoch / 10


@pytest.fixture
def model() -> CMRAN:
    torch.manual_seed(0)
    return CMRAN(**SMALL).train()


def test_rows_are_the_fresh_model_then_each_epochs_shares(model):
    videos, calls, rows = _videos(), [], []
    fresh = share_row(model, videos)

    def videos_of(m):
        calls.append(m)
        return videos

    run_epoch = recorder(rows, videos_of, _shift_weights)
    losses = [run_epoch(FakeTrainer(model), None, epoch) for epoch in (1, 2)]
    assert losses == [0.1, 0.2]
    assert calls == [model]  # the videos are fetched once
    assert [row["epoch"] for row in rows] == [0, 1, 2]
    assert math.isnan(rows[0]["loss"]) and [row["loss"] for row in rows[1:]] == [0.1, 0.2]
    assert {k: rows[0][k] for k in fresh} == fresh
    after = share_row(model, videos)  # the model after epoch 2
    assert {k: rows[2][k] for k in after} == after
    assert rows[1] != rows[2]  # the weights moved between the epochs
    assert all(0 < rows[0][k] < 1 for k in fresh)


def test_shares_are_measured_in_eval_mode_and_the_mode_is_restored(model):
    videos = _videos()
    with torch.no_grad():
        expected = attention_on_audio(model.eval(), videos["audio"], videos["visual"])
    model.train()
    assert share_row(model, videos) == expected  # dropout off: the same as in eval mode
    assert model.training


def test_a_model_other_than_cmran_is_refused():
    run_epoch = recorder([], lambda m: _videos(), _shift_weights)
    with pytest.raises(PipelineError, match="expected a CMRAN model, found Linear"):
        run_epoch(FakeTrainer(nn.Linear(2, 2)), None, 1)


def test_the_table_prints_shares_in_percent():
    rows = [
        {"epoch": 0, "loss": float("nan"), "visual stream CMRA 0": 0.5},
        {"epoch": 1, "loss": 1.25, "visual stream CMRA 0": 0.987},
    ]
    lines = table(rows).splitlines()
    assert lines[0] == "| epoch | training loss | visual stream CMRA 0 |"
    assert lines[2:] == ["| 0 | nan | 50.0 |", "| 1 | 1.250 | 98.7 |"]
