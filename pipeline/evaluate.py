"""Evaluation of a model's segment scores beside the naive strategies of seed 004 Table 1."""

import numpy as np

from pipeline.metrics import gt_repeat, model_repeat, segment_metrics
from pipeline.postprocess import b2ilc


def evaluate_scores(
    scores: np.ndarray,
    video_probabilities: np.ndarray,
    labels: np.ndarray,
    with_b2ilc: bool = False,
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
        with_b2ilc: also score the predictions after Bag-to-Instance label correction
            (seed 002, :func:`pipeline.postprocess.b2ilc`) as ``model_b2ilc``
            (default: ``False``).
    """
    predictions = scores.argmax(axis=-1)  # (n, T)
    repeated = model_repeat(video_probabilities, T=labels.shape[1])
    results = {
        "model": segment_metrics(labels, predictions),
        "gt_repeat": segment_metrics(labels, gt_repeat(labels)),
        "model_repeat": segment_metrics(labels, repeated),
    }
    if with_b2ilc:
        results["model_b2ilc"] = segment_metrics(labels, b2ilc(predictions))
    return results
