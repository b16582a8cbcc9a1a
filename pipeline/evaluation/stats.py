"""Uncertainty of the segment metrics: bootstrap over test videos, and over seeds.

Every metric of :func:`pipeline.evaluation.metrics.segment_metrics` is a function of the confusion
matrix summed over segments, and a video's segments always travel together. So a resample of
the test videos is a vector of per-video counts, and its confusion matrix is one matrix
product of those counts with the per-video confusion matrices: a thousand resamples of 402
videos cost milliseconds.

- :func:`bootstrap_ci`: the percentile CI of one model's metrics, resampling videos (not
  segments, whose errors are correlated within a video), with a seeded generator.
- :func:`seed_summary`: a table cell over several seeds. Mean and standard deviation over
  the seeds; the CI is a two-level bootstrap that covers both sources of variance: each
  resample draws the test videos with replacement *and* the seeds with replacement, and
  takes the mean over the drawn seeds of the metric on the drawn videos. A metric with a
  zero denominator counts as 0 here (:data:`ZERO_DIVISION`, scikit-learn's
  ``zero_division=0``), so that no seed and no resample is ever left out.
- :func:`paired_difference`: row minus reference row, with the same video and seed draws
  for both (paired by video and by seed index), so that the noise the two rows share (hard
  test videos, the data seed) cancels.

The three are written once for both tasks, over a :data:`Scorer` (a run's metrics under
video weightings): :func:`scorer_ci`, :func:`scorer_seed_summary`,
:func:`scorer_paired_difference`. The AVEL functions above pass :func:`confusion_scorer`;
the AVVP task passes :func:`pipeline.avvp.metrics.mean_scorer`.
"""

from collections.abc import Callable, Sequence

import numpy as np

from pipeline.errors import PipelineError

HEADLINE = ("accuracy", "weighted_f1", "non_ave_f1", "ave_f1")
# Across seeds a zero denominator counts as 0 (scikit-learn's zero_division=0), so that every
# seed and every resample has a value: a seed that never predicts background has non-AVE F1 0
# instead of dropping out of the mean and of the resamples that draw it.
ZERO_DIVISION = 0.0


def video_confusions(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-video confusion matrices, flattened: ``(n, C * C)`` (row = true class).

    Args:
        labels: ``(n, T)`` true classes.
        predictions: ``(n, T)`` predicted classes.
        n_classes: ``C``, background included.
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape or labels.ndim != 2:
        raise PipelineError(
            f"predictions: expected the (n, T) shape of the labels {labels.shape}, "
            f"found {predictions.shape}"
        )
    n = labels.shape[0]
    cells = labels * n_classes + predictions  # (n, T)
    counts = np.zeros((n, n_classes * n_classes), dtype=np.float64)
    np.add.at(counts, (np.repeat(np.arange(n), labels.shape[1]), cells.ravel()), 1.0)
    return counts


def _divide(num: np.ndarray, den: np.ndarray, fill: float = np.nan) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), fill)


def _f1(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Harmonic mean; 0 where both are 0, NaN where either is undefined (as metrics.py)."""
    total = recall + precision
    zero_or_nan = np.where(np.isnan(total), np.nan, 0.0)
    return np.where(total > 0, _divide(2 * recall * precision, total), zero_or_nan)


def _binary(
    hits: np.ndarray, true: np.ndarray, pred: np.ndarray, zero_division: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F1, recall and precision of one binary decision from its counts.

    With ``zero_division=None`` a zero denominator gives NaN and an F1 is NaN when its
    recall or precision is (as :func:`pipeline.evaluation.metrics.segment_metrics`). With a number,
    scikit-learn's ``zero_division`` convention: a zero denominator gives that number, and
    F1 = 2 TP / (2 TP + FP + FN) = 2 hits / (true + predicted), which equals the harmonic
    mean wherever both are defined and is 0 when the class is never predicted.
    """
    if zero_division is None:
        recall, precision = _divide(hits, true), _divide(hits, pred)
        return _f1(recall, precision), recall, precision
    fill = float(zero_division)
    f1 = _divide(2 * hits, true + pred, fill)
    return f1, _divide(hits, true, fill), _divide(hits, pred, fill)


def confusion_metrics(
    counts: np.ndarray,
    n_classes: int = 29,
    background: int = 28,
    zero_division: float | None = None,
) -> dict[str, np.ndarray]:
    """The metrics of :func:`pipeline.evaluation.metrics.segment_metrics`, vectorised over matrices.

    Args:
        counts: ``(..., C * C)`` flattened confusion counts (row = true class).
        n_classes: ``C`` (default: 29).
        background: the background ("non-AVE") class (default: 28).
        zero_division: ``None`` (default): NaN where :func:`segment_metrics` gives
            ``None``; a number: scikit-learn's convention (:func:`_binary`), under which
            every metric is defined.

    Returns:
        ``accuracy``, ``weighted_f1``, ``non_ave_{f1,recall,precision}`` and
        ``ave_{f1,recall,precision}``, each of the leading shape.
    """
    counts = np.asarray(counts, dtype=np.float64)
    confusion = counts.reshape(*counts.shape[:-1], n_classes, n_classes)  # (..., C, C)
    diagonal = np.diagonal(confusion, axis1=-2, axis2=-1)  # (..., C)
    true, pred = confusion.sum(axis=-1), confusion.sum(axis=-2)  # (..., C)
    n = true.sum(axis=-1)
    hits = diagonal.sum(axis=-1)
    bg_hits = diagonal[..., background]
    per_class_den = true + pred
    per_class_f1 = np.where(per_class_den > 0, _divide(2 * diagonal, per_class_den), 0.0)
    true_bg, pred_bg = true[..., background], pred[..., background]
    non_ave = _binary(bg_hits, true_bg, pred_bg, zero_division)
    ave = _binary(hits - bg_hits, n - true_bg, n - pred_bg, zero_division)
    return {
        "accuracy": _divide(hits, n),
        "weighted_f1": _divide((per_class_f1 * true).sum(axis=-1), n),
        **{f"non_ave_{k}": v for k, v in zip(("f1", "recall", "precision"), non_ave, strict=True)},
        **{f"ave_{k}": v for k, v in zip(("f1", "recall", "precision"), ave, strict=True)},
    }


def video_weights(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of ``n`` videos is drawn in each resample: ``(resamples, n)``."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def _interval(samples: np.ndarray, level: float) -> tuple[float | None, float | None]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None, None
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


Scorer = Callable[[np.ndarray | None], dict[str, np.ndarray]]
"""One run's metrics under video weightings, the one thing a task gives the bootstrap:
``(W, n)`` draw counts of the ``n`` test videos -> ``{metric: (W,)}``; ``None``: every video
once -> ``{metric: (1,)}``. The AVEL metrics are ratios of summed confusion matrices
(:func:`confusion_scorer`); the AVVP metrics are means of per-video scores
(:func:`pipeline.avvp.metrics.mean_scorer`)."""


def confusion_scorer(
    labels: np.ndarray,
    predictions: np.ndarray,
    n_classes: int = 29,
    zero_division: float | None = None,
) -> Scorer:
    """The :data:`Scorer` of the segment metrics: :func:`confusion_metrics` of the weighted
    sum of the per-video confusion matrices (:func:`video_confusions`).

    Args:
        labels: ``(n, T)`` true classes.
        predictions: ``(n, T)`` predicted classes.
        n_classes: classes, background included (default: 29).
        zero_division: a metric's value when its denominator is zero (default ``None``:
            NaN, undefined; :func:`confusion_metrics`).
    """
    per_video = video_confusions(labels, predictions, n_classes)  # (n, C*C)

    def score(weights: np.ndarray | None) -> dict[str, np.ndarray]:
        weights = np.ones((1, len(per_video))) if weights is None else weights
        return confusion_metrics(weights @ per_video, n_classes, zero_division=zero_division)

    return score


def scorer_ci(
    score: Scorer,
    n_videos: int,
    metrics: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float | None]:
    """Percentile bootstrap CI of one run's ``metrics``, resampling its ``n_videos`` test
    videos with replacement (seeded): ``<metric>_ci_low`` and ``<metric>_ci_high`` (``None``
    when the metric is undefined in every resample). Both tasks' CIs are this function."""
    values = score(video_weights(n_videos, resamples, np.random.default_rng(seed)))
    result = {}
    for name in metrics:
        result[f"{name}_ci_low"], result[f"{name}_ci_high"] = _interval(values[name], level)
    return result


def bootstrap_ci(
    labels: np.ndarray,
    predictions: np.ndarray,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    n_classes: int = 29,
    metrics: Sequence[str] = HEADLINE,
) -> dict[str, float | None]:
    """Percentile bootstrap CI of ``metrics`` over test videos (:func:`scorer_ci`).

    Args:
        labels: ``(n, T)`` true classes.
        predictions: ``(n, T)`` predicted classes.
        resamples: bootstrap resamples (default: 1000).
        seed: seed of the resampling (default: 0).
        level: coverage of the interval (default: 0.95).
        n_classes: classes, background included (default: 29).
        metrics: which metrics (default: the four headline ones).

    Returns:
        ``<metric>_ci_low`` and ``<metric>_ci_high`` for each metric (``None`` when the
        metric is undefined in every resample).
    """
    score = confusion_scorer(labels, predictions, n_classes)
    return scorer_ci(score, len(labels), metrics, resamples, seed, level)


def _per_seed(scorers: Sequence[Scorer], weights: np.ndarray | None) -> dict[str, np.ndarray]:
    """Every metric of each seed's run under each video weighting: ``(S, W)``."""
    samples = [score(weights) for score in scorers]
    return {name: np.stack([s[name] for s in samples]) for name in samples[0]}


def _seed_means(per_seed: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """``(B,)`` mean over the drawn seeds ``draws`` (``(B, S)``) of ``per_seed`` (``(S, B)``)."""
    columns = np.arange(per_seed.shape[1])[:, None]
    return per_seed[draws, columns].mean(axis=1)


def _check_runs(labels: np.ndarray, runs: Sequence[np.ndarray]) -> None:
    if not runs:
        raise PipelineError("runs: expected the predictions of at least one seed, found none")
    for p in runs:
        if np.shape(p) != np.shape(labels):
            raise PipelineError(
                f"runs: expected predictions of shape {np.shape(labels)}, found {np.shape(p)}"
            )


def _draws(n_videos: int, n_seeds: int, resamples: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    weights = video_weights(n_videos, resamples, rng)  # (B, n)
    return weights, rng.integers(n_seeds, size=(resamples, n_seeds))  # (B, S)


def scorer_seed_summary(
    scorers: Sequence[Scorer],
    n_videos: int,
    metrics: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, float | int | None]]:
    """:func:`seed_summary` of any task: one :data:`Scorer` per seed, on the same videos.

    Returns:
        Per metric: ``mean``, ``std`` (``ddof=1``; ``None`` for one seed), ``ci_low``,
        ``ci_high``, ``seeds``.
    """
    weights, draws = _draws(n_videos, len(scorers), resamples, seed)
    samples = _per_seed(scorers, weights)
    full = _per_seed(scorers, None)
    result = {}
    for name in metrics:
        values = full[name][:, 0]  # (S,)
        low, high = _interval(_seed_means(samples[name], draws), level)
        result[name] = {
            "mean": _finite(np.mean(values)),
            "std": _finite(np.std(values, ddof=1)) if len(values) > 1 else None,
            "ci_low": low,
            "ci_high": high,
            "seeds": len(scorers),
        }
    return result


def seed_summary(
    labels: np.ndarray,
    runs: Sequence[np.ndarray],
    metrics: Sequence[str] = HEADLINE,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    n_classes: int = 29,
) -> dict[str, dict[str, float | int | None]]:
    """Mean, standard deviation and a seed-and-video bootstrap CI of each metric.

    Args:
        labels: ``(n, T)`` true classes of the test videos.
        runs: each seed's ``(n, T)`` predictions.
        metrics: keys of :func:`confusion_metrics` (default: the four headline ones).
        resamples: bootstrap resamples (default: 1000).
        seed: seed of the resampling (default: 0).
        level: coverage (default: 0.95).
        n_classes: classes, background included (default: 29).

    Returns:
        Per metric: ``mean`` and ``std`` (sample standard deviation, ``ddof=1``; ``None`` for
        one seed) over the seeds of the metric on all videos, ``ci_low``, ``ci_high`` (the
        two-level bootstrap of the module docstring) and ``seeds``. Every seed counts in all
        of them: a zero denominator gives :data:`ZERO_DIVISION`.
    """
    _check_runs(labels, runs)
    scorers = [confusion_scorer(labels, p, n_classes, ZERO_DIVISION) for p in runs]
    return scorer_seed_summary(scorers, len(labels), metrics, resamples, seed, level)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def scorer_paired_difference(
    scorers: Sequence[Scorer],
    reference_scorers: Sequence[Scorer],
    n_videos: int,
    metrics: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, float | None]]:
    """:func:`paired_difference` of any task: one :data:`Scorer` per seed on each side.

    Returns:
        Per metric: ``diff`` (the difference of the seed means on all videos), ``ci_low``,
        ``ci_high``.
    """
    if len(scorers) != len(reference_scorers):
        raise PipelineError(
            f"reference_runs: expected as many seeds as the row ({len(scorers)}), "
            f"found {len(reference_scorers)}"
        )
    weights, draws = _draws(n_videos, len(scorers), resamples, seed)
    row, ref = _per_seed(scorers, weights), _per_seed(reference_scorers, weights)
    row_full, ref_full = _per_seed(scorers, None), _per_seed(reference_scorers, None)
    result = {}
    for name in metrics:
        diff = _seed_means(row[name], draws) - _seed_means(ref[name], draws)
        low, high = _interval(diff, level)
        centre = np.mean(row_full[name]) - np.mean(ref_full[name])
        result[name] = {"diff": _finite(centre), "ci_low": low, "ci_high": high}
    return result


def paired_difference(
    labels: np.ndarray,
    runs: Sequence[np.ndarray],
    reference_runs: Sequence[np.ndarray],
    metrics: Sequence[str] = HEADLINE,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    n_classes: int = 29,
) -> dict[str, dict[str, float | None]]:
    """Seed mean of ``runs`` minus that of ``reference_runs``, with a paired bootstrap CI.

    Both sides use the same video draws and the same seed-index draws (seed ``i`` of one side
    is paired with seed ``i`` of the other), so their shared noise cancels.

    Returns:
        Per metric: ``diff`` (the difference of the seed means on all videos), ``ci_low``,
        ``ci_high``.
    """
    _check_runs(labels, runs)
    _check_runs(labels, reference_runs)
    scorers = [confusion_scorer(labels, p, n_classes, ZERO_DIVISION) for p in runs]
    reference = [confusion_scorer(labels, p, n_classes, ZERO_DIVISION) for p in reference_runs]
    return scorer_paired_difference(
        scorers, reference, len(labels), metrics, resamples, seed, level
    )
