"""Evaluation of a model's segment scores beside the naive strategies of seed 004 Table 1."""

import numpy as np

from pipeline.metrics import gt_repeat, model_repeat, segment_metrics


def evaluate_scores(
    scores: np.ndarray, video_probabilities: np.ndarray, labels: np.ndarray
) -> dict[str, dict]:
    """Metrics of the model and of the naive strategies over all segments of a split.

    ``model``: arg-max of each segment's scores. ``gt_repeat``: the ground-truth video
    class repeated over the video. ``model_repeat``: the event class of highest video-level
    probability repeated over the video (seed 004 §5.1, "AVE-repeat"); the video-level
    probabilities are the model's own MIL prediction (eq 6 for the AVE baseline).

    Args:
        scores: ``(n, T, C)`` raw segment scores.
        video_probabilities: ``(n, C)`` the model's video-level probabilities.
        labels: ``(n, T)`` ground-truth classes.
    """
    repeated = model_repeat(video_probabilities, T=labels.shape[1])
    return {
        "model": segment_metrics(labels, scores.argmax(axis=-1)),
        "gt_repeat": segment_metrics(labels, gt_repeat(labels)),
        "model_repeat": segment_metrics(labels, repeated),
    }
