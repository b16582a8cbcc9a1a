r"""AVVP metrics of Tian et al. (2020) and their bootstrap CIs over test videos.

A video's prediction and ground truth are 0/1 matrices ``(25, T)`` per event type: audio
:math:`A`, visual :math:`V` and audio-visual :math:`AV = A \odot V` (the segments where
a class is both an audio and a visual event).

**Segment level.** For each class :math:`c` of a video, :math:`TP_c, FP_c, FN_c` count
segments; the class's F1 is :math:`2 TP_c / (2 TP_c + FP_c + FN_c)`; the video's score is
the mean over the classes that occur in the prediction or the ground truth (1 when none
does: all true negatives).

**Event level.** The events of a class are its runs of consecutive positive segments. A
predicted event is a true positive when some ground-truth event of the class has an IoU
(over segments) of at least :data:`IOU_THRESHOLD` = 0.5 with it, else a false positive; a
ground-truth event that no prediction matches so is a false negative. Matching is not
one-to-one, as in the reference code. Then per class and per video as above.

**Type@AV** is the mean of the audio, visual and audio-visual scores; **Event@AV** pools
the audio and visual counts of each class (:math:`TP^A_c + TP^V_c`, ...) before the F1.
Every metric is the mean of the per-video scores over the videos, so a bootstrap resample
of videos is a weighted mean (:func:`mean_scorer`); the bootstrap itself is the AVEL
task's, :mod:`pipeline.evaluation.stats`.

Predictions are turned into events as in the reference evaluation
(:func:`binarize`): a segment's class is an audio (visual) event when its audio (visual)
probability and the video-level probability of the class are both at least 0.5.
"""

from collections.abc import Sequence

import numpy as np

from pipeline.errors import PipelineError
from pipeline.evaluation.stats import (
    Scorer,
    scorer_ci,
    scorer_paired_difference,
    scorer_seed_summary,
)

IOU_THRESHOLD = 0.5
THRESHOLD = 0.5
#: Metric name -> (level, event type); the order of the columns of seed 004 Table 6.
METRICS = {
    "audio_segment": ("segment", "audio"),
    "audio_event": ("event", "audio"),
    "visual_segment": ("segment", "visual"),
    "visual_event": ("event", "visual"),
    "av_segment": ("segment", "av"),
    "av_event": ("event", "av"),
    "type_segment": ("segment", "type"),
    "type_event": ("event", "type"),
    "event_segment": ("segment", "event"),
    "event_event": ("event", "event"),
}


def binarize(
    frame_probs: np.ndarray, video_probs: np.ndarray, threshold: float = THRESHOLD
) -> np.ndarray:
    """Audio and visual event predictions, filtered by the video-level prediction.

    Args:
        frame_probs: ``(n, T, 2, C)`` per-segment audio and visual probabilities.
        video_probs: ``(n, C)`` video-level probabilities.
        threshold: the decision threshold of both. (default: 0.5)

    Returns:
        ``(n, 2, C, T)`` 0/1 audio and visual events.
    """
    frame_probs, video_probs = np.asarray(frame_probs), np.asarray(video_probs)
    if (
        frame_probs.ndim != 4
        or frame_probs.shape[2] != 2
        or video_probs.shape
        != (
            frame_probs.shape[0],
            frame_probs.shape[3],
        )
    ):
        raise PipelineError(
            f"predictions: expected frame probabilities (n, T, 2, C) and video probabilities "
            f"(n, C), found {frame_probs.shape} and {video_probs.shape}"
        )
    present = video_probs >= threshold  # (n, C)
    events = (frame_probs >= threshold) & present[:, None, None, :]  # (n, T, 2, C)
    return events.transpose(0, 2, 3, 1).astype(np.int64)


def events_of(row: np.ndarray) -> list[tuple[int, int]]:
    """The ``[start, end)`` runs of ones of a 0/1 row."""
    padded = np.concatenate([[0], np.asarray(row, dtype=np.int64), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / (a[1] - a[0] + b[1] - b[0] - inter)


def event_counts(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(C, 3)`` event-level TP, FP, FN of each class of one video (``(C, T)`` inputs)."""
    counts = np.zeros((pred.shape[0], 3), dtype=np.int64)
    for c in range(pred.shape[0]):
        predicted, true = events_of(pred[c]), events_of(gt[c])
        hits = [any(_iou(p, g) >= IOU_THRESHOLD for g in true) for p in predicted]
        found = [any(_iou(g, p) >= IOU_THRESHOLD for p in predicted) for g in true]
        counts[c] = (sum(hits), len(hits) - sum(hits), len(found) - sum(found))
    return counts


def segment_counts(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(C, 3)`` segment-level TP, FP, FN of each class of one video (``(C, T)`` inputs)."""
    pred, gt = np.asarray(pred, dtype=np.int64), np.asarray(gt, dtype=np.int64)
    return np.stack(
        [(pred * gt).sum(-1), (pred * (1 - gt)).sum(-1), ((1 - pred) * gt).sum(-1)], axis=-1
    )


def class_mean_f1(counts: np.ndarray) -> float:
    """Mean F1 over the classes with a prediction or a true positive; 1 when there is none.

    Args:
        counts: ``(C, 3)`` TP, FP, FN per class.
    """
    tp, fp, fn = counts.T
    occurring = (tp + fp + fn) > 0
    if not occurring.any():
        return 1.0
    return float(np.mean(2 * tp[occurring] / (2 * tp[occurring] + fp[occurring] + fn[occurring])))


def video_scores(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Every metric of :data:`METRICS` for one video.

    Args:
        pred: ``(2, C, T)`` 0/1 predicted audio and visual events.
        gt: ``(2, C, T)`` 0/1 true audio and visual events.
    """
    scores = {}
    for level, count in (("segment", segment_counts), ("event", event_counts)):
        a, v = count(pred[0], gt[0]), count(pred[1], gt[1])
        av = count(pred[0] * pred[1], gt[0] * gt[1])
        f = {"audio": class_mean_f1(a), "visual": class_mean_f1(v), "av": class_mean_f1(av)}
        f["type"] = (f["audio"] + f["visual"] + f["av"]) / 3
        f["event"] = class_mean_f1(a + v)
        scores |= {name: f[kind] for name, (lvl, kind) in METRICS.items() if lvl == level}
    return scores


def per_video_scores(pred: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """``{metric: (n,)}`` scores of every video.

    Args:
        pred: ``(n, 2, C, T)`` 0/1 predictions (:func:`binarize`).
        gt: ``(n, 2, C, T)`` 0/1 ground truth (:func:`pipeline.avvp.store.load_split`).
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 4 or pred.shape[1] != 2:
        raise PipelineError(
            f"predictions: expected the (n, 2, C, T) shape of the labels {gt.shape}, "
            f"found {pred.shape}"
        )
    if pred.shape[0] == 0:
        raise PipelineError("labels: expected at least one video, found none")
    rows = [video_scores(p, g) for p, g in zip(pred, gt, strict=True)]
    return {name: np.array([row[name] for row in rows]) for name in METRICS}


def avvp_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Every metric of :data:`METRICS`: the mean over videos of the per-video scores."""
    return {name: float(v.mean()) for name, v in per_video_scores(pred, gt).items()}


def mean_scorer(scores: dict[str, np.ndarray]) -> Scorer:
    """The :data:`~pipeline.evaluation.stats.Scorer` of one run's AVVP metrics: the weighted
    mean of its per-video scores (:func:`per_video_scores`, each ``(n,)``), so that the
    shared bootstrap of :mod:`pipeline.evaluation.stats` resamples AVVP runs too."""
    n = len(next(iter(scores.values())))

    def score(weights: np.ndarray | None) -> dict[str, np.ndarray]:
        if weights is None:
            return {name: np.array([v.mean()]) for name, v in scores.items()}
        return {name: (weights / n) @ v for name, v in scores.items()}

    return score


def bootstrap_ci(
    pred: np.ndarray,
    gt: np.ndarray,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    metrics: Sequence[str] = tuple(METRICS),
) -> dict[str, float]:
    """Percentile bootstrap CI of each metric, resampling test videos with replacement
    (:func:`pipeline.evaluation.stats.scorer_ci`).

    Args:
        pred: ``(n, 2, C, T)`` predictions.
        gt: ``(n, 2, C, T)`` ground truth.
        resamples: bootstrap resamples. (default: 1000)
        seed: seed of the resampling. (default: 0)
        level: coverage of the interval. (default: 0.95)
        metrics: which metrics. (default: all of :data:`METRICS`)

    Returns:
        ``<metric>_ci_low`` and ``<metric>_ci_high`` for each metric.
    """
    return scorer_ci(
        mean_scorer(per_video_scores(pred, gt)), len(pred), metrics, resamples, seed, level
    )


def _check_runs(runs: Sequence[dict[str, np.ndarray]], name: str = "runs") -> int:
    if not runs:
        raise PipelineError(f"{name}: expected the scores of at least one seed, found none")
    sizes = {len(next(iter(run.values()))) for run in runs}
    if len(sizes) != 1:
        raise PipelineError(f"{name}: expected every seed scored on the same videos, found {sizes}")
    return sizes.pop()


def seed_summary(
    runs: Sequence[dict[str, np.ndarray]],
    metrics: Sequence[str] = tuple(METRICS),
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, float | int | None]]:
    """Mean, standard deviation and a seed-and-video bootstrap CI of each metric
    (:func:`pipeline.evaluation.stats.scorer_seed_summary`, the AVEL tables' own).

    Args:
        runs: each seed's :func:`per_video_scores` on the same test videos.
        metrics: which metrics. (default: all)
        resamples: bootstrap resamples. (default: 1000)
        seed: seed of the resampling. (default: 0)
        level: coverage. (default: 0.95)
    """
    n = _check_runs(runs)
    scorers = [mean_scorer(run) for run in runs]
    return scorer_seed_summary(scorers, n, metrics, resamples, seed, level)


def paired_difference(
    runs: Sequence[dict[str, np.ndarray]],
    reference_runs: Sequence[dict[str, np.ndarray]],
    metrics: Sequence[str] = tuple(METRICS),
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, float]]:
    """Seed mean of ``runs`` minus that of ``reference_runs``, with a paired bootstrap CI
    (:func:`pipeline.evaluation.stats.scorer_paired_difference`): both sides use the same
    video draws and seed-index draws, so the noise they share cancels.

    Returns:
        Per metric: ``diff`` (on all videos), ``ci_low``, ``ci_high``.
    """
    n = _check_runs(runs)
    if _check_runs(reference_runs, "reference_runs") != n or len(runs) != len(reference_runs):
        raise PipelineError(
            f"reference_runs: expected {len(runs)} seeds on the same {n} videos as the row"
        )
    scorers, reference = [mean_scorer(r) for r in runs], [mean_scorer(r) for r in reference_runs]
    return scorer_paired_difference(scorers, reference, n, metrics, resamples, seed, level)


#: Column titles of :func:`format_table`, in the order of seed 004 Table 6.
TITLES = {
    "audio_segment": "Audio Seg.",
    "audio_event": "Audio Event",
    "visual_segment": "Visual Seg.",
    "visual_event": "Visual Event",
    "av_segment": "AV Seg.",
    "av_event": "AV Event",
    "type_segment": "Type@AV Seg.",
    "type_event": "Type@AV Event",
    "event_segment": "Event@AV Seg.",
    "event_event": "Event@AV Event",
}


def format_table(rows: dict[str, dict]) -> str:
    """A markdown table in the layout of seed 004 Table 6, percent with the 95 % CI.

    Args:
        rows: method name -> ``{"model": {metric: value}, "ci": {<metric>_ci_low: ...}}``
            (the content of ``metrics/avvp/evaluate/<task>.json``).
    """
    lines = [
        "| Method | " + " | ".join(TITLES.values()) + " |",
        "|---|" + "---:|" * len(TITLES),
    ]
    for method, row in rows.items():
        cells = []
        for name in TITLES:
            low, high = row["ci"][f"{name}_ci_low"], row["ci"][f"{name}_ci_high"]
            cells.append(f"{100 * row['model'][name]:.1f} [{100 * low:.1f}, {100 * high:.1f}]")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
