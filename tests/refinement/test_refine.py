"""Tests of temporal label refinement and the auxiliary objective (seed 004 §4.2-§4.3, §5.3)."""

import math

import numpy as np
import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.losses import (
    auxiliary_loss,
    auxiliary_scores,
    label_refinement_loss,
    mil_loss,
    slice_label_vectors,
    union_labels,
)
from pipeline.refinement.labels import (
    SliceLabels,
    dummy_slice_labels,
    load_slice_labels,
    pseudo_label_quality,
    pseudo_segment_labels,
    save_slice_labels,
    slice_label_sets,
    slice_truth,
)
from pipeline.refinement.slices import slice_starts, synthetic_videos, validate_window

# Small label space for hand examples: classes 0-2 are events, 3 is background.
BG = 3


def _softmax(values: list[float]) -> list[float]:
    total = sum(math.exp(v) for v in values)
    return [math.exp(v) / total for v in values]


def _soft_margin(probabilities: list[float], labels: list[float]) -> float:
    """Multilabel soft margin of eq 6's g, written out."""
    terms = [
        y * math.log(1 / (1 + math.exp(-p))) + (1 - y) * math.log(1 / (1 + math.exp(p)))
        for p, y in zip(probabilities, labels, strict=True)
    ]
    return -sum(terms) / len(terms)


def _mean_pool_cross_entropy(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """A mean-pooling weak loss like DPNet's: -sum_c ybar_c log mean_t softmax(x_t)_c."""
    probabilities = torch.softmax(scores, dim=-1).mean(dim=1)  # (B, C)
    targets = labels / labels.sum(dim=-1, keepdim=True)  # (B, C)
    return -(targets * probabilities.log()).sum(dim=-1).mean()


@pytest.mark.parametrize(("window", "stride"), [(4, 2), (2, 2), (3, 1), (5, 5), (1, 1)])
def test_validate_window_accepts_table_7_choices(window: int, stride: int) -> None:
    validate_window(10, window, stride)


@pytest.mark.parametrize(
    ("window", "stride", "match"),
    [
        (5, 2, r"refine\.stride.*divide T - window = 10 - 5 = 5.*stride 2"),
        (6, 2, r"refine\.window.*\(T \+ 1\) / 2 = 5\.5.*found 6"),
        (4, 0, r"refine\.stride.*>= 1, found 0"),
        (0, 1, r"refine\.window.*1 <= window <= T = 10, found 0"),
        (11, 1, r"refine\.window.*found 11"),
    ],
)
def test_validate_window_rejects(window: int, stride: int, match: str) -> None:
    with pytest.raises(PipelineError, match=match):
        validate_window(10, window, stride)


def test_validate_window_boundary_of_eq_14_for_odd_t() -> None:
    validate_window(9, 4, 1)  # 4 < (9 + 1) / 2 = 5
    with pytest.raises(PipelineError, match=r"refine\.window.*= 5\.0.*found 5"):
        validate_window(9, 5, 1)  # 5 is not < 5


def test_slice_starts_are_zero_based_with_t1_slices() -> None:
    assert slice_starts(10, 4, 2) == [0, 2, 4, 6]  # T1 = (10 - 4) / 2 + 1 = 4
    assert slice_starts(10, 5, 5) == [0, 5]
    assert slice_starts(10, 3, 1) == [0, 1, 2, 3, 4, 5, 6, 7]
    with pytest.raises(PipelineError, match="refine.stride"):
        slice_starts(10, 5, 2)


def test_synthetic_videos_keep_the_window_of_the_first_video() -> None:
    first = torch.arange(1.0, 11.0).unsqueeze(0)  # (1, 10): 1..10
    second = -first  # (1, 10): -1..-10
    videos = synthetic_videos(first, second, [0, 2, 4, 6], 4)
    expected = torch.tensor(
        [
            [1, 2, 3, 4, -5, -6, -7, -8, -9, -10],
            [-1, -2, 3, 4, 5, 6, -7, -8, -9, -10],
            [-1, -2, -3, -4, 5, 6, 7, 8, -9, -10],
            [-1, -2, -3, -4, -5, -6, 7, 8, 9, 10],
        ],
        dtype=torch.float32,
    )
    assert videos.shape == (1, 4, 10)
    assert torch.equal(videos[0], expected)


def test_synthetic_videos_of_feature_maps() -> None:
    first = torch.rand(2, 10, 3, 2, 4) + 1.0  # (B, T, H, W, D), all > 0
    second = -torch.rand(2, 10, 3, 2, 4) - 1.0  # all < 0
    videos = synthetic_videos(first, second, [0, 5], 5)
    assert videos.shape == (2, 2, 10, 3, 2, 4)
    assert torch.equal(videos[:, 0, :5], first[:, :5])
    assert torch.equal(videos[:, 0, 5:], second[:, 5:])
    assert torch.equal(videos[:, 1, :5], second[:, :5])
    assert torch.equal(videos[:, 1, 5:], first[:, 5:])


def test_synthetic_videos_reject_mismatched_shapes() -> None:
    with pytest.raises(PipelineError, match=r"\(1, 10, 2\) and \(1, 10, 3\)"):
        synthetic_videos(torch.zeros(1, 10, 2), torch.zeros(1, 10, 3), [0], 4)


def test_synthetic_videos_pass_gradients_to_both_videos() -> None:
    first = torch.zeros(1, 10, requires_grad=True)
    second = torch.zeros(1, 10, requires_grad=True)
    synthetic_videos(first, second, [0, 2, 4, 6], 4).sum().backward()
    # Segment t is kept from `first` by as many windows as cover it, from `second` by the rest.
    covered = torch.tensor([[1.0, 1, 2, 2, 2, 2, 2, 2, 1, 1]])
    assert torch.equal(first.grad, covered)
    assert torch.equal(second.grad, 4 - covered)


def test_slice_label_sets_filter_by_video_labels_and_threshold() -> None:
    probabilities = torch.tensor(
        [
            [[0.05, 0.04, 0.50, 0.41], [0.01, 0.20, 0.70, 0.09]],  # video 0, slices 0 and 1
            [[0.30, 0.30, 0.10, 0.30], [0.00, 0.00, 0.00, 1.00]],  # video 1 (background)
        ]
    )  # (2, 2, 4)
    labels = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])  # (2, 4)
    sets = slice_label_sets(probabilities, labels, 0.05, background=BG)
    # Slice 0: class 0 at exactly tau is kept, class 1 below it is not, class 2 is masked.
    # Slice 1: class 1 kept. Video 1 has no events: both slices are empty.
    expected = torch.tensor(
        [
            [[True, False, False, False], [False, True, False, False]],
            [[False, False, False, False], [False, False, False, False]],
        ]
    )
    assert torch.equal(sets, expected)


@pytest.mark.parametrize("tau", [0.0, 1.0, -0.1])
def test_slice_label_sets_reject_tau_outside_the_unit_interval(tau: float) -> None:
    with pytest.raises(PipelineError, match=r"refine\.tau.*0 < tau < 1"):
        slice_label_sets(torch.zeros(1, 1, 4), torch.zeros(1, 4), tau, background=BG)


def test_slice_label_vectors_mark_empty_slices_as_background() -> None:
    sets = torch.tensor(
        [[True, False, False, False], [False, False, False, False], [False, True, True, True]]
    )
    expected = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1], [0, 1, 1, 0]])
    assert torch.equal(slice_label_vectors(sets, background=BG), expected)


def test_union_labels_background_only_when_no_event() -> None:
    labels_i = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]])
    labels_j = torch.tensor([[0.0, 0, 0, 1], [0, 0, 0, 1], [0, 1, 0, 0]])
    expected = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 0, 0]])
    assert torch.equal(union_labels(labels_i, labels_j, background=BG), expected)


# One video, T = 4 segments, 3 classes; windows N = 2 at starts [0, 2].
SCORES = torch.tensor([[[1.0, 0, 0], [0, 2, 0], [0, 0, 3], [2, 0, 1]]])  # (1, 4, 3)
SLICE_LABELS = torch.tensor([[[0.0, 1, 0], [0, 0, 1]]])  # (1, 2, 3)


def test_label_refinement_loss_is_mean_mil_loss_over_slices() -> None:
    # Max over slice [0, 1] = [1, 2, 0]; over slice [2, 3] = [2, 0, 3]; eq 12 softmax, g.
    first = _soft_margin(_softmax([1.0, 2.0, 0.0]), [0.0, 1.0, 0.0])
    second = _soft_margin(_softmax([2.0, 0.0, 3.0]), [0.0, 0.0, 1.0])
    loss = label_refinement_loss(SCORES, SLICE_LABELS, [0, 2], 2, mil_loss)
    assert loss.item() == pytest.approx((first + second) / 2, abs=1e-6)


def test_label_refinement_loss_averages_over_videos_with_any_weak_loss() -> None:
    scores = torch.cat([SCORES, SCORES.flip(1)])  # (2, 4, 3)
    labels = torch.cat([SLICE_LABELS, SLICE_LABELS.flip(1)])  # (2, 2, 3)
    per_slice = [
        _mean_pool_cross_entropy(scores[b : b + 1, t : t + 2], labels[b : b + 1, k])
        for b in range(2)
        for k, t in enumerate([0, 2])
    ]
    loss = label_refinement_loss(scores, labels, [0, 2], 2, _mean_pool_cross_entropy)
    assert loss.item() == pytest.approx(torch.stack(per_slice).mean().item(), abs=1e-6)


def test_label_refinement_loss_rejects_mismatched_labels() -> None:
    with pytest.raises(PipelineError, match=r"expected shape \(1, 2, 3\), found \(1, 3, 3\)"):
        label_refinement_loss(SCORES, torch.zeros(1, 3, 3), [0, 2], 2, mil_loss)


# One video, T1 = 2 synthetic videos of T = 2 segments, 3 classes.
SYNTHETIC = torch.tensor([[[[1.0, 0, -1], [0, 3, 0]], [[4, 0, 0], [0, 0, 2]]]])  # (1, 2, 2, 3)


def test_auxiliary_scores_pool_within_then_across_synthetic_videos() -> None:
    # Within: [1, 3, 0] and [4, 0, 2]; across: [4, 3, 2].
    assert torch.equal(auxiliary_scores(SYNTHETIC), torch.tensor([[4.0, 3, 2]]))


def test_auxiliary_loss_is_soft_margin_on_softmax_of_pooled_scores() -> None:
    union = torch.tensor([[1.0, 0, 1]])
    expected = _soft_margin(_softmax([4.0, 3.0, 2.0]), [1.0, 0.0, 1.0])  # eqs 17-18
    assert auxiliary_loss(SYNTHETIC, union, mil_loss).item() == pytest.approx(expected, abs=1e-6)


def test_auxiliary_loss_with_mean_pooling_averages_all_synthetic_segments() -> None:
    union = torch.tensor([[1.0, 0, 1]])
    segments = [_softmax(row) for row in SYNTHETIC[0].flatten(0, 1).tolist()]  # 4 segments
    mean = [sum(column) / 4 for column in zip(*segments, strict=True)]
    expected = -(0.5 * math.log(mean[0]) + 0.5 * math.log(mean[2]))
    loss = auxiliary_loss(SYNTHETIC, union, _mean_pool_cross_entropy)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_losses_pass_gradients_to_the_scores() -> None:
    scores = SCORES.clone().requires_grad_()
    label_refinement_loss(scores, SLICE_LABELS, [0, 2], 2, mil_loss).backward()
    assert scores.grad.abs().sum() > 0
    synthetic = SYNTHETIC.clone().requires_grad_()
    auxiliary_loss(synthetic, torch.tensor([[1.0, 0, 1]]), mil_loss).backward()
    # Max pooling: only the maximum of each class ([4, 3, 2]) gets a gradient.
    assert (synthetic.grad != 0).sum() == 3


def test_pseudo_segment_labels_restricted_to_video_labels_and_background() -> None:
    scores = torch.tensor(
        [
            [[5.0, 1, 0, 0], [0, 0, 9, 2], [0, 3, 0, 1]],  # video 0: label {1}
            [[5.0, 1, 0, 0], [0, 0, 9, 2], [0, 3, 0, 1]],  # video 1: background only
        ]
    )  # (2, 3, 4)
    labels = torch.tensor([[0.0, 1, 0, 0], [0, 0, 0, 1]])
    expected = torch.tensor([[1, 3, 1], [3, 3, 3]])
    assert torch.equal(pseudo_segment_labels(scores, labels, background=BG), expected)


def test_dummy_slice_labels_repeat_the_video_label() -> None:
    labels = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1]])
    dummy = dummy_slice_labels(labels, 4)
    assert dummy.shape == (2, 4, 4)
    assert torch.equal(dummy, torch.stack([labels] * 4, dim=1))


def test_slice_truth_sets_of_events_per_window() -> None:
    segments = np.array([[3, 3, 0, 0, 1, 3]])  # (1, 6)
    truth = slice_truth(segments, [0, 2, 4], 2, n_classes=4, background=BG)
    expected = np.array([[[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]]], dtype=bool)
    np.testing.assert_array_equal(truth, expected)
    overlapping = slice_truth(segments, [0, 1, 2], 4, n_classes=4, background=BG)
    np.testing.assert_array_equal(overlapping[0, :, :3], [[1, 0, 0], [1, 1, 0], [1, 1, 0]])
    with pytest.raises(PipelineError, match=r"\[0, 4\).*\[0, 4\]"):
        slice_truth(np.array([[0, 4]]), [0], 1, n_classes=4, background=BG)


def _sets(rows: list[list[int]]) -> np.ndarray:
    return np.array([rows], dtype=bool)  # (1, T1, C)


def test_pseudo_label_quality_known_answer() -> None:
    truth = _sets([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    predicted = _sets([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    quality = pseudo_label_quality(predicted, truth)
    assert quality == {
        "slices": 4,
        "true_pairs": 3,
        "predicted_pairs": 4,
        "correct_pairs": 3,
        "background_slices": 2,
        "predicted_background_slices": 1,
        "precision": pytest.approx(3 / 4),
        "recall": pytest.approx(1.0),
        "f1": pytest.approx(6 / 7),
        "background_precision": pytest.approx(1.0),
        "background_recall": pytest.approx(1 / 2),
        "background_f1": pytest.approx(2 / 3),
        "exact_match": pytest.approx(3 / 4),
    }


def test_pseudo_label_quality_undefined_ratios_are_none() -> None:
    empty = pseudo_label_quality(_sets([[0, 0, 0, 0]] * 2), _sets([[0, 0, 0, 0]] * 2))
    assert (empty["precision"], empty["recall"], empty["f1"]) == (None, None, None)
    assert (empty["background_f1"], empty["exact_match"]) == (1.0, 1.0)
    spurious = pseudo_label_quality(_sets([[1, 0, 0, 0]]), _sets([[0, 0, 0, 0]]))
    assert (spurious["precision"], spurious["recall"], spurious["f1"]) == (0.0, None, 0.0)
    assert spurious["background_precision"] is None
    nothing = pseudo_label_quality(np.zeros((0, 4, 4), bool), np.zeros((0, 4, 4), bool))
    assert nothing["slices"] == 0
    assert nothing["exact_match"] is None
    with pytest.raises(PipelineError, match="same shape"):
        pseudo_label_quality(np.zeros((1, 2, 4), bool), np.zeros((1, 3, 4), bool))


def test_slice_labels_round_trip_and_bad_files_are_named(tmp_path):
    sets = np.zeros((2, 4, 29), dtype=bool)
    sets[1, 2, 5] = True
    labels = SliceLabels("pseudo", np.array([7, 3]), [0, 2, 4, 6], 4, sets, np.full((2, 10), 28))
    path = tmp_path / "labels.npz"
    save_slice_labels(path, labels)
    loaded = load_slice_labels(path)
    assert (loaded.kind, loaded.starts, loaded.window) == ("pseudo", [0, 2, 4, 6], 4)
    assert np.array_equal(loaded.sets, sets) and np.array_equal(loaded.rows, [7, 3])
    bad = SliceLabels("guess", labels.rows, labels.starts, 4, sets, labels.segments)
    save_slice_labels(path, bad)
    with pytest.raises(PipelineError, match=r"labels.npz \[key 'kind'\]: expected one of"):
        load_slice_labels(path)
    save_slice_labels(path, SliceLabels("refined", labels.rows, [0, 2], 4, sets, labels.segments))
    with pytest.raises(PipelineError, match=r"\[key 'sets'\]: expected shape \(2, 2, 29\)"):
        load_slice_labels(path)
    with pytest.raises(PipelineError, match="file not found"):
        load_slice_labels(tmp_path / "missing.npz")
