"""AVVP metrics on hand-made videos with answers computed by hand."""

import numpy as np
import pytest

from pipeline.avvp.metrics import (
    METRICS,
    avvp_metrics,
    binarize,
    bootstrap_ci,
    event_counts,
    events_of,
    per_video_scores,
    seed_summary,
    video_scores,
)
from pipeline.errors import PipelineError


def _rows(spec: dict[tuple[int, int], tuple[int, int]], C: int = 3) -> np.ndarray:
    """``(2, C, 10)`` events from ``{(modality, class): (start, end)}``."""
    out = np.zeros((2, C, 10), dtype=np.int64)
    for (m, c), (start, end) in spec.items():
        out[m, c, start:end] = 1
    return out


# gt: audio class 0 [0, 4), class 1 [6, 10); visual class 0 [2, 6)
GT = _rows({(0, 0): (0, 4), (0, 1): (6, 10), (1, 0): (2, 6)})
# pred: audio class 0 [0, 2), class 2 [8, 10) (a wrong class); visual class 0 [2, 6)
PRED = _rows({(0, 0): (0, 2), (0, 2): (8, 10), (1, 0): (2, 6)})


def test_hand_made_video():
    scores = video_scores(PRED, GT)
    expected = {
        # audio: class 0 TP 2 FN 2 -> 4/6; class 1 FN 4 -> 0; class 2 FP 2 -> 0
        "audio_segment": (4 / 6) / 3,
        "visual_segment": 1.0,
        # av truth: class 0 [2, 4); predicted av: [0, 2) & [2, 6) = nothing
        "av_segment": 0.0,
        "type_segment": ((4 / 6) / 3 + 1.0 + 0.0) / 3,
        # pooled a + v: class 0 TP 6 FN 2 -> 12/14; classes 1, 2 -> 0
        "event_segment": (12 / 14) / 3,
        # events: [0, 2) vs [0, 4) has IoU 0.5, a match; class 1 FN; class 2 FP
        "audio_event": 1 / 3,
        "visual_event": 1.0,
        "av_event": 0.0,
        "type_event": (1 / 3 + 1.0 + 0.0) / 3,
        "event_event": 1 / 3,
    }
    assert scores == pytest.approx(expected)
    assert set(scores) == set(METRICS)


def test_iou_just_below_the_threshold_is_no_match():
    gt, pred = _rows({(0, 0): (0, 4)}), _rows({(0, 0): (0, 1)})  # IoU 1/4
    counts = event_counts(pred[0], gt[0])
    assert counts[0].tolist() == [0, 1, 1]
    assert video_scores(pred, gt)["audio_event"] == 0.0
    assert video_scores(pred, gt)["audio_segment"] == pytest.approx(2 * 1 / (2 + 3))


def test_matching_is_not_one_to_one():
    # one predicted [0, 10) matches [0, 6) (IoU 0.6), not [7, 10) (IoU 0.3)
    gt = np.zeros((1, 10), dtype=np.int64)
    gt[0, :6], gt[0, 7:] = 1, 1
    pred = np.ones((1, 10), dtype=np.int64)
    assert event_counts(pred, gt)[0].tolist() == [1, 0, 1]


def test_empty_video_scores_one():
    empty = np.zeros((2, 3, 10), dtype=np.int64)
    assert video_scores(empty, empty) == {name: 1.0 for name in METRICS}


def test_events_of_runs():
    assert events_of(np.array([1, 1, 0, 0, 1, 0, 0, 0, 1, 1])) == [(0, 2), (4, 5), (8, 10)]


def test_binarize_filters_by_the_video_prediction():
    frame = np.zeros((1, 10, 2, 3))
    frame[0, :3, 0, 0] = 0.9  # audio class 0, video-level 0.7: kept
    frame[0, :3, 1, 1] = 0.9  # visual class 1, video-level 0.4: dropped
    frame[0, 5, 0, 2] = 0.5  # exactly the threshold: kept
    video = np.array([[0.7, 0.4, 0.5]])
    events = binarize(frame, video)
    assert events.shape == (1, 2, 3, 10)
    assert events[0, 0, 0].tolist() == [1, 1, 1] + [0] * 7
    assert events[0, 1, 1].sum() == 0
    assert events[0, 0, 2, 5] == 1 and events.sum() == 4
    with pytest.raises(PipelineError, match="expected frame probabilities"):
        binarize(frame[:, :, :1], video)


def test_dataset_metric_is_the_mean_over_videos():
    perfect = np.stack([GT, GT])
    mixed = np.stack([PRED, GT])
    got = avvp_metrics(mixed, perfect)
    assert got["audio_segment"] == pytest.approx(((4 / 6) / 3 + 1.0) / 2)
    with pytest.raises(PipelineError, match="expected the"):
        avvp_metrics(mixed[:, :1], perfect)


def test_bootstrap_ci_brackets_the_mean_and_is_seeded():
    rng = np.random.default_rng(0)
    gt = (rng.random((40, 2, 4, 10)) < 0.3).astype(np.int64)
    pred = np.where(rng.random(gt.shape) < 0.8, gt, 1 - gt)
    means = avvp_metrics(pred, gt)
    ci = bootstrap_ci(pred, gt, resamples=300, seed=1)
    for name in METRICS:
        assert ci[f"{name}_ci_low"] <= means[name] <= ci[f"{name}_ci_high"]
        assert ci[f"{name}_ci_low"] < ci[f"{name}_ci_high"]
    assert ci == bootstrap_ci(pred, gt, resamples=300, seed=1)
    same = bootstrap_ci(np.stack([GT] * 5), np.stack([GT] * 5), resamples=50)
    assert same["audio_event_ci_low"] == same["audio_event_ci_high"] == 1.0


def test_seed_summary_over_identical_and_different_seeds():
    gt = np.stack([GT, GT, GT])
    first = per_video_scores(np.stack([PRED, GT, GT]), gt)
    second = per_video_scores(gt, gt)
    same = seed_summary([first, first], resamples=100)
    assert same["audio_segment"]["std"] == 0.0 and same["audio_segment"]["seeds"] == 2
    both = seed_summary([first, second], resamples=100)
    mean = ((4 / 6 / 3 + 2) / 3 + 1.0) / 2
    assert both["audio_segment"]["mean"] == pytest.approx(mean)
    assert both["audio_segment"]["ci_low"] <= mean <= both["audio_segment"]["ci_high"]
    assert seed_summary([first], resamples=10)["visual_event"]["std"] is None


def test_the_avvp_bootstrap_is_the_shared_one_over_a_weighted_mean():
    from pipeline.avvp.metrics import mean_scorer
    from pipeline.evaluation.stats import scorer_ci

    scores = {"audio_segment": np.array([0.0, 0.5, 1.0])}
    score = mean_scorer(scores)
    assert score(None)["audio_segment"].tolist() == [0.5]
    # video 0 twice and video 2 once; video 2 three times
    weights = np.array([[2.0, 0.0, 1.0], [0.0, 0.0, 3.0]])
    assert score(weights)["audio_segment"] == pytest.approx([1 / 3, 1.0])
    pred = np.stack([GT, GT, np.zeros_like(GT)])
    gt = np.stack([GT, GT, GT])
    shared = scorer_ci(mean_scorer(per_video_scores(pred, gt)), 3, ["av_segment"], 50, seed=4)
    assert bootstrap_ci(pred, gt, 50, seed=4, metrics=["av_segment"]) == shared
