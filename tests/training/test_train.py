"""Training utilities: schedules, checkpoint choice on val, devices."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.models.base import AVELModel
from pipeline.training.loop import (
    Trainer,
    fit,
    make_optimizer,
    make_scheduler,
    segment_accuracy,
    warm_restart_factor,
)
from pipeline.training.objectives import Supervised
from tests.conftest import train_config


def test_warm_restart_factor_follows_the_dpnet_schedule():
    # seed 001 §4: restarts every 20 epochs, floor 0.1 until epoch 300, then 0.01 until 400
    args = (20, [300, 400], [0.1, 0.01])
    assert warm_restart_factor(0, *args) == pytest.approx(1.0)
    assert warm_restart_factor(10, *args) == pytest.approx(0.1 + 0.9 * 0.5)  # cos(pi/2) = 0
    assert warm_restart_factor(19, *args) == pytest.approx(
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 19 / 20))
    )
    assert warm_restart_factor(20, *args) == pytest.approx(1.0)  # warm restart
    assert warm_restart_factor(310, *args) == pytest.approx(0.01 + 0.99 * 0.5)
    assert warm_restart_factor(399, *args) < 0.02


def test_cosine_restarts_scheduler_sets_the_learning_rate_per_epoch():
    weight = nn.Parameter(torch.zeros(1))
    config = train_config(
        optimizer="sgd",
        lr=2.0,
        scheduler="cosine_restarts",
        epochs=40,
        step_size=4,
        milestones=[4, 8],
        floors=[0.5, 0.25],
    )
    optimizer = make_optimizer(config, [weight])
    scheduler = make_scheduler(config, optimizer)
    rates = []
    for _ in range(9):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    # period 4: 1, 0.5 + 0.5 * (1 + cos(pi/4)) / 2, ..., restart at 4 with floor 0.25
    assert rates[0] == pytest.approx(2.0)
    assert rates[2] == pytest.approx(2.0 * 0.75)
    assert rates[4] == pytest.approx(2.0)
    assert rates[6] == pytest.approx(2.0 * (0.25 + 0.75 * 0.5))
    assert rates[8] == pytest.approx(2.0)


def test_step_scheduler_decays_by_gamma():
    config = train_config(lr=1.0, scheduler="step", epochs=10, step_size=2, gamma=0.5)
    optimizer = make_optimizer(config, [nn.Parameter(torch.zeros(1))])
    scheduler = make_scheduler(config, optimizer)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.25)


def test_multistep_scheduler_decays_by_gamma_at_each_milestone():
    config = train_config(lr=1.0, scheduler="multistep", epochs=10, milestones=[2, 3], gamma=0.5)
    optimizer = make_optimizer(config, [nn.Parameter(torch.zeros(1))])
    scheduler = make_scheduler(config, optimizer)
    rates = []
    for _ in range(5):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([1.0, 1.0, 0.5, 0.25, 0.25])


def test_segment_accuracy():
    scores = np.zeros((1, 4, 3))
    scores[0, [0, 1, 2, 3], [0, 1, 2, 0]] = 1.0
    assert segment_accuracy(scores, np.array([[0, 1, 1, 1]])) == 0.5


class _Batches(list):
    """A list of batches with the ``dataset.labels`` that :func:`fit` reads."""

    def __init__(self, batches, labels):
        super().__init__(batches)
        self.dataset = type("D", (), {"labels": labels})()


class _Memorizer(AVELModel):
    """Scores from a learnable table, so val accuracy moves with training."""

    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.zeros(2, 29))

    def forward(self, audio, visual):
        return self.table.expand(audio.shape[0], 2, 29)


def _sgd_trainer(model: nn.Module, **kwargs) -> Trainer:
    config = train_config(optimizer="sgd", lr=1.0, scheduler="constant", epochs=3)
    optimizer = make_optimizer(config, model.parameters())
    scheduler = make_scheduler(config, optimizer)
    return Trainer(model, Supervised(), optimizer, scheduler, torch.device("cpu"), **kwargs)


def test_fit_keeps_the_epoch_with_the_best_val_accuracy():
    torch.manual_seed(0)
    labels = torch.tensor([[3, 28]])
    batch = {
        "audio": torch.zeros(1, 2, 1),
        "visual": torch.zeros(1, 2, 1),
        "labels": labels,
        "index": torch.tensor([0]),
    }
    train = _Batches([batch], labels.numpy())
    wrong_val = _Batches([batch], np.array([[4, 4]]))  # val labels the training never sees
    result = fit(_sgd_trainer(_Memorizer()), train, wrong_val, 3)
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert all(row["val_accuracy"] == 0.0 for row in result.history)
    # no wall-clock column: the log is a DVC output that a rerun must reproduce
    assert set(result.history[0]) == {"epoch", "train_loss", "val_accuracy", "lr"}
    assert result.best_epoch == 1  # ties keep the earliest
    first_val = _Batches([batch], labels.numpy())
    result = fit(_sgd_trainer(_Memorizer()), train, first_val, 3)
    assert result.best_val_accuracy == 1.0
    assert torch.equal(result.best_state["table"].argmax(dim=1), labels[0])
