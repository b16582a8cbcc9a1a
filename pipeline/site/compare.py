"""Per-class accuracy of two runs on the same test videos, and its paired bootstrap CI.

Seed 001 discusses per-class gains ("rodents +17 %"); a per-class accuracy rests on few
videos, so the difference carries a CI. As in :mod:`pipeline.evaluation.stats`, videos (not
segments)
are resampled, and both runs see the same draws: the resample's confusion matrices are the
per-video matrices (:func:`pipeline.evaluation.stats.video_confusions`) weighted by the draw
(:func:`pipeline.evaluation.stats.video_weights`), and a class's accuracy is its diagonal cell over
its
row (its recall), :math:`\\mathrm{acc}_c = M_{cc} / \\sum_j M_{cj}`.
"""

import numpy as np

from pipeline.errors import PipelineError
from pipeline.evaluation.stats import video_confusions, video_weights

N_CLASSES = 29


def per_class_accuracy(counts: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """``(..., C)`` accuracy of each true class (NaN for a class with no segment).

    Args:
        counts: ``(..., C * C)`` flattened confusion counts (row = true class).
        n_classes: ``C`` (default: 29).
    """
    confusion = counts.reshape(*counts.shape[:-1], n_classes, n_classes)  # (..., C, C)
    support = confusion.sum(axis=-1)  # (..., C)
    diagonal = np.diagonal(confusion, axis1=-2, axis2=-1)  # (..., C)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(support > 0, diagonal / np.where(support > 0, support, 1), np.nan)


def per_class_difference(
    labels: np.ndarray,
    predictions: np.ndarray,
    reference: np.ndarray,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    n_classes: int = N_CLASSES,
) -> dict[str, np.ndarray]:
    """Per-class accuracy of ``predictions`` and ``reference``, their difference and its CI.

    Args:
        labels: ``(n, T)`` true classes.
        predictions: ``(n, T)`` classes predicted by the run compared.
        reference: ``(n, T)`` classes predicted by the reference run.
        resamples: bootstrap resamples (default: 1000).
        seed: seed of the resampling (default: 0).
        level: coverage of the interval (default: 0.95).
        n_classes: classes, background included (default: 29).

    Returns:
        ``(C,)`` arrays: ``accuracy``, ``reference_accuracy``, ``diff`` (on all videos),
        ``ci_low``, ``ci_high`` (percentile interval of the paired resampled differences)
        and ``support`` (segments of the class); NaN where the class has no segment.
    """
    labels = np.asarray(labels)
    if np.shape(predictions) != labels.shape or np.shape(reference) != labels.shape:
        raise PipelineError(
            f"per-class difference: expected predictions of the labels' shape {labels.shape}, "
            f"found {np.shape(predictions)} and {np.shape(reference)}"
        )
    mine = video_confusions(labels, predictions, n_classes)  # (n, C*C)
    theirs = video_confusions(labels, reference, n_classes)  # (n, C*C)
    weights = video_weights(len(labels), resamples, np.random.default_rng(seed))  # (B, n)
    diffs = per_class_accuracy(weights @ mine, n_classes) - per_class_accuracy(
        weights @ theirs, n_classes
    )  # (B, C)
    tail = 100 * (1 - level) / 2
    low, high = np.full(n_classes, np.nan), np.full(n_classes, np.nan)
    for c in range(n_classes):
        finite = diffs[:, c][np.isfinite(diffs[:, c])]
        if finite.size:
            low[c], high[c] = np.percentile(finite, [tail, 100 - tail])
    accuracy = per_class_accuracy(mine.sum(axis=0), n_classes)
    reference_accuracy = per_class_accuracy(theirs.sum(axis=0), n_classes)
    return {
        "accuracy": accuracy,
        "reference_accuracy": reference_accuracy,
        "diff": accuracy - reference_accuracy,
        "ci_low": low,
        "ci_high": high,
        "support": np.bincount(labels.ravel(), minlength=n_classes).astype(np.float64),
    }


def disagreement(labels: np.ndarray, predictions: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per video: whether the runs disagree on some segment, and which runs are wrong.

    Args:
        labels: ``(n, T)`` true classes.
        predictions: each run's ``(n, T)`` classes.

    Returns:
        ``disagree`` ``(n,)`` bool: two runs differ on some segment; ``wrong`` ``(R, n)``
        bool: run ``r`` misses some segment of the video.
    """
    stacked = np.stack([np.asarray(p) for p in predictions])  # (R, n, T)
    disagree = (stacked != stacked[:1]).any(axis=(0, 2))  # (n,)
    wrong = (stacked != np.asarray(labels)[None]).any(axis=2)  # (R, n)
    return {"disagree": disagree, "wrong": wrong}
