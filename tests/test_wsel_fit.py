"""bench.wsel_fit: its figures on a hand-made case, the per-video pull, and the loss it shows."""

import math

import numpy as np
import pytest
import torch

from bench.wsel_fit import fit_figures, probabilities_and_pull
from pipeline.data.dataset import AVEDataset
from pipeline.losses import mean_pooled_loss, mil_loss
from pipeline.training.objectives import weak_labels


def test_fit_figures_of_a_hand_computed_case():
    # 3 classes, background = 2; video 2 has no event and is left out
    labels = np.array([[0] * 10, [2] * 6 + [1] * 4, [2] * 10, [1] * 10])
    probabilities = np.array(
        [[0.7, 0.1, 0.2], [0.5, 0.2, 0.3], [0.1, 0.1, 0.8], [0.05, 0.15, 0.8]]
    )  # video 0 found; video 1 missed (0 over 1); video 3 found (1 over 0, background ignored)
    pulls = np.array([1.0, 4.0, 100.0, 3.0])
    figures = fit_figures(probabilities, pulls, labels, background=2)
    assert figures["videos"] == 3
    assert figures["found"] == pytest.approx(2 / 3)
    assert figures["missed_true_probability"] == pytest.approx([0.2, 0.2, 0.2])
    assert (figures["pull_found"], figures["pull_missed"]) == (2.0, 4.0)
    assert (figures["length_found"], figures["length_missed"]) == (10.0, 4.0)
    # top classes 0, 0, 1 cover the true classes 0 and 1: no class is dead
    assert (figures["dead_classes"], figures["dead_videos"]) == ([], 0)


def test_a_class_no_video_ranks_first_is_dead_with_all_its_videos():
    labels = np.array([[0] * 10, [1] * 10, [1] * 10, [3] * 10])  # background = 3
    probabilities = np.array(
        [[0.6, 0.3, 0.1, 0], [0.5, 0.2, 0.3, 0], [0.1, 0.3, 0.6, 0], [0.1, 0.1, 0.1, 0.7]]
    )  # class 1's videos rank 0 and 2 first: class 1 is dead
    figures = fit_figures(probabilities, np.ones(4), labels, background=3)
    assert figures["videos"] == 3 and figures["found"] == pytest.approx(1 / 3)
    assert (figures["dead_classes"], figures["dead_videos"]) == ([1], 2)


def test_fit_figures_with_every_class_found_give_nan_for_the_missed():
    figures = fit_figures(np.array([[0.9, 0.1]]), np.array([1.0]), np.array([[0] * 10]), 1)
    assert figures["found"] == 1.0
    assert math.isnan(figures["pull_missed"]) and math.isnan(figures["length_missed"])
    assert all(map(math.isnan, figures["missed_true_probability"]))


def test_each_videos_pull_is_the_gradient_of_its_own_loss(tiny_store, tiny_ave_model):
    model = tiny_ave_model
    dataset = AVEDataset(tiny_store, "train")
    probabilities, pulls = probabilities_and_pull(model, dataset, batch=3)
    assert probabilities.shape == (len(dataset), 29) and pulls.shape == (len(dataset),)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    item = dataset.__getitems__([1])
    with torch.no_grad():
        scores = model(item["audio"], item["visual"])
    scores.requires_grad_(True)
    (gradient,) = torch.autograd.grad(model.wsel_loss(scores, weak_labels(item["labels"])), scores)
    assert pulls[1] == pytest.approx(gradient.norm().item(), rel=1e-5)


def _pull(loss, true_score: float, wrong_score: float) -> float:
    """Gradient norm of ``loss`` where class 0 (the label) scores ``true_score``, class 1
    ``wrong_score`` and the other 27 classes 0, at every segment."""
    scores = torch.zeros(1, 10, 29)
    scores[..., 0], scores[..., 1] = true_score, wrong_score
    scores.requires_grad_(True)
    labels = torch.zeros(1, 29)
    labels[0, 0] = 1
    return torch.autograd.grad(loss(scores, labels), scores)[0].norm().item()


def test_the_soft_margin_of_probabilities_stops_pulling_a_confidently_wrong_video():
    fitted, wrong = (5.0, 0.0), (-5.0, 10.0)  # true-class probability 0.85 and 2e-7
    # the MIL loss (soft margin of eq 6's probabilities): 1.2e-3 against 3.1e-6
    assert _pull(mil_loss, *wrong) < _pull(mil_loss, *fitted) / 100
    # the mean-pooled cross-entropy (a log-likelihood): 0.05 against 0.45
    assert _pull(mean_pooled_loss, *wrong) > 5 * _pull(mean_pooled_loss, *fitted)
