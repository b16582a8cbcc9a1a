"""Evaluation of a model's predictions beside the naive strategies of seed 004 Table 1.

Every strategy's segment metrics carry a 95 % bootstrap CI over the test videos
(:func:`pipeline.evaluation.stats.bootstrap_ci`), and the per-video predictions are kept so that two
experiments can later be compared pairwise on the same resampled videos
(:mod:`pipeline.experiments.tables`).
"""

import numpy as np

from pipeline.evaluation.metrics import gt_repeat, model_repeat, segment_metrics
from pipeline.evaluation.postprocess import b2ilc
from pipeline.evaluation.stats import bootstrap_ci


def strategy_predictions(
    scores: np.ndarray,
    video_probabilities: np.ndarray,
    labels: np.ndarray,
    with_b2ilc: bool = False,
) -> dict[str, np.ndarray]:
    """The ``(n, T)`` predictions of the model and of the naive strategies.

    ``model``: arg-max of each segment's scores. ``gt_repeat``: the ground-truth video
    class repeated over the video. ``model_repeat``: the event class of highest video-level
    probability repeated over the video (seed 004 §5.1, "AVE-repeat"); the video-level
    probabilities are the model's own MIL prediction (eq 6 for the AVE baseline).

    Args:
        scores: ``(n, T, C)`` raw segment scores.
        video_probabilities: ``(n, C)`` the model's video-level probabilities.
        labels: ``(n, T)`` ground-truth classes (for GT-repeat).
        with_b2ilc: also the predictions after Bag-to-Instance label correction (seed 002,
            :func:`pipeline.evaluation.postprocess.b2ilc`) as ``model_b2ilc`` (default: ``False``).
    """
    predictions = scores.argmax(axis=-1)  # (n, T)
    result = {
        "model": predictions,
        "gt_repeat": gt_repeat(labels),
        "model_repeat": model_repeat(video_probabilities, T=labels.shape[1]),
    }
    if with_b2ilc:
        result["model_b2ilc"] = b2ilc(predictions)
    return result


TOP_K = 3


def top_probabilities(scores: np.ndarray, k: int = TOP_K) -> dict[str, np.ndarray]:
    """The ``k`` most probable classes of each segment and their softmax probabilities.

    Kept beside the predictions (``reports/predictions/<task>.json``) so that a report can
    show, per segment, how sure the model was (:mod:`pipeline.site`).

    Args:
        scores: ``(n, T, C)`` raw segment scores (logits).
        k: classes kept per segment (default: 3).

    Returns:
        ``model_top_classes`` ``(n, T, k)`` int, most probable first, and
        ``model_top_probabilities`` ``(n, T, k)``, rounded to 4 decimals.
    """
    scores = np.asarray(scores, dtype=np.float64)
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))  # (n, T, C)
    probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
    top = np.argsort(-probabilities, axis=-1, kind="stable")[..., :k]  # (n, T, k)
    kept = np.take_along_axis(probabilities, top, axis=-1)  # (n, T, k)
    return {"model_top_classes": top, "model_top_probabilities": np.round(kept, 4)}


def score_predictions(
    predictions: dict[str, np.ndarray], labels: np.ndarray, resamples: int = 1000, seed: int = 0
) -> dict[str, dict]:
    """Segment metrics of each strategy, with the bootstrap CI bounds as scalar entries.

    Args:
        predictions: strategy name -> ``(n, T)`` predicted classes.
        labels: ``(n, T)`` ground-truth classes.
        resamples: bootstrap resamples over videos (default: 1000).
        seed: seed of the resampling; the same for every strategy, so that their intervals
            come from the same resampled test sets (default: 0).

    Returns:
        Strategy name -> :func:`pipeline.evaluation.metrics.segment_metrics` plus
        ``<metric>_ci_low`` / ``<metric>_ci_high`` of the four headline metrics.
    """
    return {
        name: {**segment_metrics(labels, p), **bootstrap_ci(labels, p, resamples, seed)}
        for name, p in predictions.items()
    }


def evaluate_scores(
    scores: np.ndarray,
    video_probabilities: np.ndarray,
    labels: np.ndarray,
    with_b2ilc: bool = False,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, dict]:
    """Metrics of the model and of the naive strategies over all segments of a split.

    :func:`strategy_predictions` scored by :func:`score_predictions`; the arguments are
    theirs.
    """
    predictions = strategy_predictions(scores, video_probabilities, labels, with_b2ilc)
    return score_predictions(predictions, labels, resamples, seed)
