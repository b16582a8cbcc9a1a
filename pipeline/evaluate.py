"""Evaluation of a model's segment scores beside the naive strategies of seed 004 Table 1."""

import numpy as np
from scipy.special import softmax

from pipeline.metrics import gt_repeat, model_repeat, segment_metrics


def video_probabilities(scores: np.ndarray) -> np.ndarray:
    """Video-level probabilities of seed 004 §4.1 eq 6: softmax of the max over time.

    Args:
        scores: ``(n, T, C)`` raw segment scores.

    Returns:
        ``(n, C)`` probabilities.
    """
    return softmax(scores.max(axis=1), axis=-1)


def evaluate_scores(scores: np.ndarray, labels: np.ndarray) -> dict[str, dict]:
    """Metrics of the model and of the naive strategies over all segments of a split.

    ``model``: arg-max of each segment's scores. ``gt_repeat``: the ground-truth video
    class repeated over the video. ``model_repeat``: the event class of highest video-level
    probability (eq 6) repeated over the video (seed 004 §5.1, "AVE-repeat").

    Args:
        scores: ``(n, T, C)`` raw segment scores.
        labels: ``(n, T)`` ground-truth classes.
    """
    repeated = model_repeat(video_probabilities(scores), T=labels.shape[1])
    return {
        "model": segment_metrics(labels, scores.argmax(axis=-1)),
        "gt_repeat": segment_metrics(labels, gt_repeat(labels)),
        "model_repeat": segment_metrics(labels, repeated),
    }
