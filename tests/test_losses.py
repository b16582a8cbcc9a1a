"""Tests of the weak labels, the MIL prediction and the losses (seed 004 §3, §4.1 eq 6)."""

import math

import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.losses import (
    mean_pooled_loss,
    mean_pooled_probabilities,
    mil_loss,
    sel_loss,
    video_labels_from_segments,
    video_prediction,
)

# One video, T = 2 segments, 3 classes: the max over time is [1, 2, 0].
SCORES = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 2.0, -1.0]]])  # (1, 2, 3)


def _softmax(values: list[float]) -> list[float]:
    total = sum(math.exp(v) for v in values)
    return [math.exp(v) / total for v in values]


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value))


def test_video_prediction_is_softmax_of_max_over_time() -> None:
    # MaxPool over t: [max(1, 0), max(0, 2), max(0, -1)] = [1, 2, 0]; then SoftMax.
    expected = _softmax([1.0, 2.0, 0.0])  # [0.2447, 0.6652, 0.0900]
    prediction = video_prediction(SCORES)
    assert prediction.shape == (1, 3)
    assert torch.allclose(prediction, torch.tensor([expected]), atol=1e-6)


def test_mil_loss_is_soft_margin_loss_on_the_probabilities() -> None:
    labels = torch.tensor([[1.0, 0.0, 0.0]])
    p = _softmax([1.0, 2.0, 0.0])  # Y_hat of eq 6
    # soft margin: -(1/C) sum_c [Y_c log sigmoid(p_c) + (1 - Y_c) log(1 - sigmoid(p_c))]
    expected = (
        -(math.log(_sigmoid(p[0])) + math.log(1 - _sigmoid(p[1])) + math.log(1 - _sigmoid(p[2])))
        / 3
    )  # ~= 0.7992
    assert mil_loss(SCORES, labels).item() == pytest.approx(expected, abs=1e-6)


def test_mil_loss_averages_over_videos() -> None:
    scores = torch.cat([SCORES, SCORES.flip(-1)])  # (2, 2, 3)
    labels = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    each = [mil_loss(scores[i : i + 1], labels[i : i + 1]) for i in range(2)]
    assert mil_loss(scores, labels).item() == pytest.approx((each[0] + each[1]).item() / 2)


def test_sel_loss_is_mean_segment_cross_entropy() -> None:
    labels = torch.tensor([[0, 2]])
    # -log softmax([1, 0, 0])[0] and -log softmax([0, 2, -1])[2], averaged over 2 segments.
    expected = -(math.log(_softmax([1.0, 0.0, 0.0])[0]) + math.log(_softmax([0.0, 2.0, -1.0])[2]))
    assert sel_loss(SCORES, labels).item() == pytest.approx(expected / 2, abs=1e-6)


def test_video_labels_are_strict_presence_labels() -> None:
    labels = torch.tensor(
        [
            [3, 3, 3, 3],  # background only -> Y = background
            [3, 1, 1, 3],  # partial event -> Y = {1}, background column 0
            [0, 0, 2, 2],  # two events, no background segment
            [1, 1, 1, 1],  # event over the whole video
        ]
    )
    expected = torch.tensor(
        [
            [0.0, 0.0, 0.0, 1.0],
            [0.0, 1.0, 0.0, 0.0],
            [1.0, 0.0, 1.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
        ]
    )
    result = video_labels_from_segments(labels, n_classes=4, background=3)
    assert result.dtype == torch.float32
    assert torch.equal(result, expected)


def test_video_labels_default_to_29_classes_with_background_28() -> None:
    labels = torch.tensor([[28] * 9 + [5], [28] * 10])
    result = video_labels_from_segments(labels)
    assert result.shape == (2, 29)
    assert result[0].nonzero().flatten().tolist() == [5]
    assert result[1].nonzero().flatten().tolist() == [28]


@pytest.mark.parametrize("bad", [-1, 4])
def test_video_labels_reject_out_of_range_classes(bad) -> None:
    with pytest.raises(PipelineError, match=r"expected class indices in \[0, 4\)"):
        video_labels_from_segments(torch.tensor([[0, bad]]), n_classes=4, background=3)


def test_mean_pooled_loss_by_hand() -> None:
    # T = 2, C = 2: softmax([0, 0]) = [0.5, 0.5], softmax([ln 3, 0]) = [0.75, 0.25];
    # their mean is the video prediction [0.625, 0.375].
    scores = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])  # (1, 2, 2)
    one = mean_pooled_loss(scores, torch.tensor([[1.0, 0.0]]))
    assert one.item() == pytest.approx(-math.log(0.625), abs=1e-6)
    both = mean_pooled_loss(scores, torch.tensor([[1.0, 1.0]]))  # normalised to [0.5, 0.5]
    assert both.item() == pytest.approx(-(math.log(0.625) + math.log(0.375)) / 2, abs=1e-6)
    probabilities = mean_pooled_probabilities(scores)
    assert torch.allclose(probabilities, torch.tensor([[0.625, 0.375]]))
    batch = mean_pooled_loss(scores.repeat(2, 1, 1), torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    assert batch.item() == pytest.approx((one.item() + both.item()) / 2, abs=1e-6)


def test_mean_pooled_loss_rejects_bad_labels() -> None:
    scores = torch.zeros(2, 10, 3)
    with pytest.raises(PipelineError, match="video_labels: expected shape"):
        mean_pooled_loss(scores, torch.ones(2, 4))
    with pytest.raises(PipelineError, match="at least one class"):
        mean_pooled_loss(scores, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
