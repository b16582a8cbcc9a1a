"""Per-class accuracy differences with their paired CI, and where runs disagree."""

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.site.compare import disagreement, per_class_accuracy, per_class_difference


def test_per_class_difference_by_hand():
    labels = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    mine = np.array([[0, 1, 1, 1], [0, 1, 1, 1]])  # class 0: 2/4, class 1: 4/4
    reference = np.array([[0, 0, 0, 1], [0, 0, 0, 1]])  # class 0: 4/4, class 1: 2/4
    found = per_class_difference(labels, mine, reference, resamples=50)
    assert found["accuracy"][:2].tolist() == [0.5, 1.0]
    assert found["reference_accuracy"][:2].tolist() == [1.0, 0.5]
    assert found["diff"][:2].tolist() == [-0.5, 0.5]
    # the two videos are identical: every resample gives the same difference
    assert found["ci_low"][:2].tolist() == [-0.5, 0.5]
    assert found["ci_high"][:2].tolist() == [-0.5, 0.5]
    assert found["support"][:3].tolist() == [4.0, 4.0, 0.0]
    assert np.isnan(found["accuracy"][2]) and np.isnan(found["ci_low"][2])


def test_the_paired_interval_is_narrower_than_the_spread_of_either_run():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(200, 10))
    hard = rng.random(200) < 0.5  # hard videos: both runs miss most of their segments
    miss = (rng.random((200, 10)) < np.where(hard, 0.8, 0.1)[:, None]).astype(int)
    reference = np.where(miss, (labels + 1) % 3, labels)
    mine = reference.copy()
    mine[:20, 0] = labels[:20, 0]  # a few more segments right
    found = per_class_difference(labels, mine, reference, resamples=400)
    assert np.all(found["diff"][:3] >= 0)
    width = found["ci_high"][:3] - found["ci_low"][:3]
    assert np.all(width < 0.1)  # the shared hard videos cancel


def test_per_class_accuracy_is_the_recall_of_the_confusion_rows():
    counts = np.array([[3.0, 1.0, 0.0, 0.0]])  # class 0: 3 right of 4; class 1: none
    assert per_class_accuracy(counts, n_classes=2)[0, 0] == 0.75
    assert np.isnan(per_class_accuracy(counts, n_classes=2)[0, 1])


def test_shapes_must_match():
    with pytest.raises(PipelineError, match=r"expected predictions of the labels' shape \(1, 4\)"):
        per_class_difference(np.zeros((1, 4), int), np.zeros((1, 3), int), np.zeros((1, 4), int))


def test_disagreement_by_hand():
    labels = np.array([[1, 1], [2, 2], [3, 3]])
    a = np.array([[1, 1], [2, 0], [0, 0]])
    b = np.array([[1, 1], [2, 2], [0, 0]])
    found = disagreement(labels, [a, b])
    assert found["disagree"].tolist() == [False, True, False]
    assert found["wrong"].tolist() == [[False, True, True], [False, False, True]]
