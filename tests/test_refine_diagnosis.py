"""bench.refine_diagnosis: its counts on a hand-made case, and the refine stage's sets."""

import numpy as np
import pytest
import torch

from bench.refine_diagnosis import diagnose, spliced_probabilities, video_probabilities
from pipeline.data import store
from pipeline.data.dataset import AVEDataset
from pipeline.refinement.labels import estimate_slice_labels, slice_label_sets
from pipeline.training.objectives import weak_labels

STARTS, WINDOW = [0, 2, 4, 6], 4


def _hand_case(taus):
    # 3 classes, background = 2. Video 0: class 0 everywhere; video 1: class 1 in 6..9.
    labels = np.array([[0] * 10, [2] * 6 + [1] * 4])
    event = np.array([[0.9, 0.01, 0.2, 0.04], [0.01, 0.2, 0.03, 0.6]])  # (n, T1)
    spliced = np.zeros((2, 4, 3))
    spliced[0, :, 0], spliced[1, :, 1] = event[0], event[1]
    spliced[0, :, 1] = 0.7  # not the video's class: filtered out by eq 10
    spliced[..., 2] = 0.25
    own = np.array([[0.03, 0.9, 0.07], [0.1, 0.7, 0.2]])  # video 0's class missed alone
    partner = np.array([[0.0, 0.9, 0.1], [0.5, 0.0, 0.5], [0.1, 0.0, 0.9]])
    return diagnose(own, partner, spliced, labels, STARTS, WINDOW, taus, background=2)


def test_diagnosis_counts_a_hand_computed_case():
    figures = _hand_case([0.05, 0.3])
    # slices (0-3, 2-5, 4-7, 6-9): video 0 all {0}; video 1 bg, bg, {1}, {1}
    assert figures["true_background_slices"] == 2
    assert figures["wholly_event_slices"] == 5  # video 0's four, video 1's last
    assert figures["own_video_detected"] == 0.5
    assert figures["partner_background_quantiles"] == pytest.approx([0.18, 0.5, 0.82])
    assert figures["spliced_background_mean"] == pytest.approx(0.25)
    # tau 0.05: video 0 slices 1, 3 (0.01, 0.04); video 1 slices 0, 2 (0.01, 0.03)
    assert figures["per_tau"][0.05] == {"marked_background": 4, "truly_background": 1}
    assert figures["per_tau"][0.3] == {"marked_background": 6, "truly_background": 2}
    assert figures["wholly_event_marked_background"] == 2
    assert figures["wholly_event_marked_background_detected_alone"] == 0  # video 0 missed alone


def test_the_first_tau_is_the_one_of_the_slice_figures():
    figures = _hand_case([0.3, 0.05])
    assert figures["wholly_event_marked_background"] == 3  # video 0: 0.01, 0.2, 0.04
    assert figures["own_video_detected"] == 0.5  # video 1's 0.7 only
    assert list(figures["per_tau"]) == [0.3, 0.05]


def test_spliced_probabilities_threshold_to_the_refine_stages_sets(tiny_store, tiny_ave_model):
    model = tiny_ave_model
    dataset = AVEDataset(tiny_store, "train", background_videos=True)  # the 3x3 maps
    n = len(dataset) - dataset.n_background_videos
    videos = np.arange(n)
    partners = np.random.default_rng(0).integers(n, len(dataset), size=n)
    probabilities = spliced_probabilities(model, dataset, videos, partners, STARTS, WINDOW, 7)
    present = weak_labels(torch.from_numpy(dataset.labels[:n])).float()  # (n, C)
    ours = slice_label_sets(torch.from_numpy(probabilities), present, 0.05).numpy()
    stage = estimate_slice_labels(
        model, dataset, videos, partners, STARTS, WINDOW, 0.05, 5, torch.device("cpu")
    )
    assert probabilities.shape == (n, len(STARTS), store.N_CLASSES)
    np.testing.assert_array_equal(ours, stage)
    alone = video_probabilities(model, dataset, np.arange(len(dataset)), 7)
    assert alone.shape == (len(dataset), store.N_CLASSES)
    np.testing.assert_allclose(alone.sum(axis=1), 1.0, rtol=1e-5)
