"""The AVVP training loop's checkpoint choice."""

from pathlib import Path

import torch

from pipeline.avvp.han import HAN
from pipeline.avvp.train import fit_han, load_data
from tests.avvp.test_refine import CONFIG


def test_equal_validation_scores_keep_the_later_epoch(tiny_llp: Path):
    # lr 0: the weights never move, so every epoch scores the same on val; Tian et al.'s
    # official code (`if F >= best_F`) then saves the last epoch
    torch.manual_seed(0)
    device = torch.device("cpu")
    train, val = load_data(tiny_llp, "train"), load_data(tiny_llp, "val")
    model = HAN(**train.dims(), hidden=16, feedforward=16)
    result = fit_han(model, train, val, dict(CONFIG, epochs=3, lr=0.0), device)
    scores = [row["val_type_segment"] for row in result.history]
    assert scores == [scores[0]] * 3
    assert result.best_epoch == 3
