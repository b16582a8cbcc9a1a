"""Segment-level AVEL metrics and naive repeat baselines (seed 004 §5.1).

Accuracy alone rewards video classification: repeating the video-level event over all
``T`` segments ("GT-repeat") scores 82.2% on AVE test without ever detecting a background
segment. Seed 004 §5.1 therefore reports, over all test segments, (i) accuracy, (ii) the
weighted F1, (iii) F1/recall/precision of detecting the background ("non-AVE") class and
(iv) F1/recall/precision of classifying audio-visual events ("AVE"). A value whose
denominator is zero is undefined and returned as ``None`` (the '-' of seed 004 Table 1).
"""

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score

from pipeline.errors import PipelineError

_COLUMNS = (
    ("Accuracy", "accuracy", None),
    ("Wt. F1", "weighted_f1", None),
    ("Non-AVE F1 (R/P)", "non_ave_f1", ("non_ave_recall", "non_ave_precision")),
    ("AVE F1 (R/P)", "ave_f1", ("ave_recall", "ave_precision")),
)


def _integers(name: str, values: np.ndarray) -> np.ndarray:
    """Return ``values`` as int64; integer arrays and float arrays of whole numbers pass."""
    values = np.asarray(values)
    numeric = np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)
    if not numeric or not np.all(np.mod(values, 1) == 0):
        raise PipelineError(
            f"{name}: expected integer class indices, found dtype {values.dtype} "
            "with non-integer values"
        )
    return values.astype(np.int64)


def _class_indices(name: str, values: np.ndarray, n_classes: int) -> np.ndarray:
    """Return ``values`` as int64 after checking they are class indices in ``[0, n_classes)``."""
    values = _integers(name, values)
    if values.size and (values.min() < 0 or values.max() >= n_classes):
        raise PipelineError(
            f"{name}: expected class indices in [0, {n_classes}), "
            f"found values in [{values.min()}, {values.max()}]"
        )
    return values


def _ratio(num: float, den: float) -> float | None:
    """``num / den`` as a float, or ``None`` when ``den`` is zero (undefined)."""
    return float(num / den) if den else None


def _harmonic(recall: float | None, precision: float | None) -> float | None:
    """F1 as the harmonic mean of recall and precision; ``None`` if either is undefined.

    Both defined and zero gives 0.0 (the limit of the harmonic mean).
    """
    if recall is None or precision is None:
        return None
    return _ratio(2 * recall * precision, recall + precision) or 0.0


def segment_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 29, background: int = 28
) -> dict:
    r"""Segment-level metrics of seed 004 §5.1, computed over all segments.

    With :math:`b` the background class:

    - ``accuracy``: fraction of segments whose class is predicted exactly.
    - ``weighted_f1``: scikit-learn ``f1_score(average="weighted", zero_division=0)`` over
      all ``n_classes`` classes, background included; each class's F1 is weighted by its
      true support, so classes absent from ``y_true`` get weight zero.
    - ``non_ave_*``: binary detection of :math:`b`. Recall = segments correctly predicted
      :math:`b` / true :math:`b` segments; precision = the same / segments predicted
      :math:`b`.
    - ``ave_*``: event classification. Recall = correctly classified event segments / true
      event segments; precision = the same / segments predicted as any event class.
    - F1 is the harmonic mean of recall and precision.
    - ``per_class_accuracy``: recall of each true class (``None`` without true segments).
    - ``confusion_matrix``: rows = true class, columns = predicted class.

    A value with a zero denominator is ``None``; an F1 is ``None`` when its recall or its
    precision is. All values are plain Python numbers (fractions in :math:`[0, 1]`), so the
    result is JSON-serialisable.

    Args:
        y_true: ground-truth class indices, shape ``(n_videos, T)`` or flat.
        y_pred: predicted class indices, same shape as ``y_true``.
        n_classes: number of classes, background included.
        background: index of the background ("non-AVE") class.

    Returns:
        A dict with keys ``accuracy``, ``weighted_f1``, ``non_ave_f1``, ``non_ave_recall``,
        ``non_ave_precision``, ``ave_f1``, ``ave_recall``, ``ave_precision``,
        ``per_class_accuracy``, ``confusion_matrix`` and ``n_segments``.

    Raises:
        PipelineError: on different shapes, no segments, non-integer values or values
            outside ``[0, n_classes)``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise PipelineError(
            f"y_pred: expected the shape of y_true {y_true.shape}, found {y_pred.shape}"
        )
    if y_true.size == 0:
        raise PipelineError("y_true: expected at least one segment, found none")
    if not 0 <= background < n_classes:
        raise PipelineError(
            f"background: expected an index in [0, {n_classes}), found {background}"
        )
    y_true = _class_indices("y_true", y_true, n_classes).ravel()
    y_pred = _class_indices("y_pred", y_pred, n_classes).ravel()
    labels = np.arange(n_classes)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    true_counts, pred_counts, n = cm.sum(axis=1), cm.sum(axis=0), int(cm.sum())
    bg_hits, event_hits = cm[background, background], np.trace(cm) - cm[background, background]
    non_ave_recall = _ratio(bg_hits, true_counts[background])
    non_ave_precision = _ratio(bg_hits, pred_counts[background])
    ave_recall = _ratio(event_hits, n - true_counts[background])
    ave_precision = _ratio(event_hits, n - pred_counts[background])
    weighted_f1 = f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
    return {
        "accuracy": float(np.trace(cm) / n),
        "weighted_f1": float(weighted_f1),
        "non_ave_f1": _harmonic(non_ave_recall, non_ave_precision),
        "non_ave_recall": non_ave_recall,
        "non_ave_precision": non_ave_precision,
        "ave_f1": _harmonic(ave_recall, ave_precision),
        "ave_recall": ave_recall,
        "ave_precision": ave_precision,
        "per_class_accuracy": [_ratio(cm[c, c], true_counts[c]) for c in labels],
        "confusion_matrix": cm.tolist(),
        "n_segments": n,
    }


def gt_repeat(labels: np.ndarray, background: int = 28) -> np.ndarray:
    """The "GT-repeat" baseline of seed 004 §5.1 (Table 1).

    Each video's ground-truth video-level audio-visual event is repeated over all its
    segments. A video with no event segment gets ``background`` everywhere. AVE videos hold
    a single event class; should one hold several, the most frequent is taken (ties go to
    the lowest class index).

    Args:
        labels: segment-level ground-truth class indices, shape ``(n_videos, T)``.
        background: index of the background class.

    Returns:
        int64 array of shape ``(n_videos, T)``.

    Raises:
        PipelineError: if ``labels`` is not 2-D or holds non-integer or negative values.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise PipelineError(f"labels: expected shape (n_videos, T), found {labels.shape}")
    labels = _integers("labels", labels)
    n_classes = max(background, int(labels.max(initial=0))) + 1
    labels = _class_indices("labels", labels, n_classes)
    counts = np.zeros((labels.shape[0], n_classes), dtype=np.int64)
    np.add.at(counts, (np.arange(labels.shape[0])[:, None], labels), 1)
    counts[:, background] = 0
    video_class = np.where(counts.max(axis=1) > 0, counts.argmax(axis=1), background)
    return np.repeat(video_class[:, None], labels.shape[1], axis=1)


def model_repeat(video_probs: np.ndarray, background: int = 28, T: int = 10) -> np.ndarray:
    """The "AVE-repeat" baseline of seed 004 §5.1 (Table 1).

    The audio-visual class with the highest predicted video-level probability, background
    excluded, is repeated over all ``T`` segments.

    Args:
        video_probs: video-level class probabilities, shape ``(n_videos, C + 1)``.
        background: index of the background column, never predicted.
        T: number of segments per video.

    Returns:
        int64 array of shape ``(n_videos, T)``.

    Raises:
        PipelineError: if ``video_probs`` is not 2-D with a background column and an event
            column.
    """
    probs = np.asarray(video_probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2 or not 0 <= background < probs.shape[1]:
        raise PipelineError(
            f"video_probs: expected shape (n_videos, C + 1) with background column "
            f"{background}, found {probs.shape}"
        )
    probs = probs.copy()
    probs[:, background] = -np.inf
    return np.repeat(probs.argmax(axis=1)[:, None], T, axis=1)


def _percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal, or '-' when undefined."""
    return "-" if value is None else f"{100 * value:.1f}"


def _cell(row: dict, key: str, parts: tuple[str, str] | None) -> str:
    """One table cell: the value, followed by ``(recall/precision)`` when ``parts`` is set."""
    text = _percent(row.get(key))
    if parts is None:
        return text
    return f"{text} ({_percent(row.get(parts[0]))}/{_percent(row.get(parts[1]))})"


def format_table(rows: dict[str, dict]) -> str:
    """A markdown table of methods in the layout of seed 004 Table 2.

    Columns are Accuracy, Wt. F1, Non-AVE F1 (R/P) and AVE F1 (R/P), as percentages with one
    decimal; an undefined (``None``) or missing value shows as '-'.

    Args:
        rows: method name -> a dict returned by :func:`segment_metrics`.

    Returns:
        The table, one line per method, ending with a newline.
    """
    lines = [
        "| Method | " + " | ".join(title for title, _, _ in _COLUMNS) + " |",
        "|---|" + "---:|" * len(_COLUMNS),
    ]
    for method, row in rows.items():
        cells = [_cell(row, key, parts) for _, key, parts in _COLUMNS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
