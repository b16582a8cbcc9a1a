r"""The slice labels of Step 2 of seed 004 §4.2 and their baselines (+LR_dummy, +PL).

The math here is model-agnostic: models map ``(audio, visual)`` to raw segment scores
``(B, T, C)``, and each function takes those scores (or the features that go in) plus the
base model's own video-level predictor or weak loss where the paper says "the base model".

Steps of seed 004 §4.2:

1. train a base model :math:`\Phi_0` weakly, with the auxiliary loss of §4.3 eqs 15-18
   (:func:`pipeline.losses.auxiliary_loss`);
2. for every training video :math:`V^{(i)}` and window start :math:`t_1`
   (:func:`pipeline.refinement.slices.slice_starts`), build the synthetic video of eq 9 with a
   background-only :math:`V^{(j)}` (§5.1, :func:`pipeline.refinement.slices.synthetic_videos`), and
   threshold the filtered video prediction of eqs 10-11 (:func:`slice_label_sets`): this
   module;
3. retrain with the slice-level loss of eqs 12-13
   (:func:`pipeline.losses.label_refinement_loss`).

Label *sets* are ``(..., C)`` bool masks over event classes whose
background column is always ``False``; an empty set is a background-only slice. Label
*vectors* are the float presence labels of seed 004 §3 (background = 1 iff no event).
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pipeline import hooks
from pipeline.data.store import BACKGROUND, N_CLASSES
from pipeline.errors import PipelineError
from pipeline.npz import fail, load_npz, save_npz
from pipeline.refinement.slices import synthetic_videos, window_index
from pipeline.training.precision import autocast


def slice_label_sets(
    video_probabilities: torch.Tensor,
    video_labels: torch.Tensor,
    tau: float,
    background: int = BACKGROUND,
) -> torch.Tensor:
    r"""Slice pseudo-label sets of seed 004 §4.2 eqs 10-11.

    .. math::
        \hat{Z}^{(i;t_1)} = Y^{(i)} \odot \Phi_0(\tilde{V}^{(i;t_1)}), \qquad
        L^{(i)}[t_1, t_1 + N - 1] = \{c \in [1, C] \mid \hat{Z}^{(i;t_1)}(c) \geq \tau\}

    :math:`\Phi_0(\tilde{V})` is the base model's *own* video-level prediction (its
    ``video_probabilities``: softmax of the max over time for the AVE baseline, eq 6; the
    mean segment softmax for DPNet), since eq 8 relies on the model being a video-level
    predictor of what it was trained to predict. :math:`\tau = 0.05` was tuned for eq 6
    (§5.3), so other predictors may need their own. :math:`c \in [1, C]` excludes the
    background class; the threshold is inclusive. An empty set means that no event of
    :math:`L^{(i)}` was detected in the slice: a background slice
    (:func:`pipeline.losses.slice_label_vectors`). A background-only video therefore gets
    background slices.

    Args:
        video_probabilities: ``(B, T1, C)`` video-level probabilities of the synthetic videos.
        video_labels: ``(B, C)`` presence labels :math:`Y^{(i)}` of the original videos.
        tau: detection threshold :math:`\tau \in (0, 1)` (``refine.tau``).
        background: index of the background class.

    Returns:
        ``(B, T1, C)`` bool event sets, background column ``False``.
    """
    if not 0.0 < tau < 1.0:
        raise PipelineError(f"refine.tau: expected 0 < tau < 1 (seed 004 eq 11), found {tau}")
    filtered = video_labels.unsqueeze(1) * video_probabilities  # (B, T1, C): Z-hat, eq 10
    sets = filtered >= tau  # (B, T1, C): eq 11
    sets[..., background] = False
    return sets


def pseudo_segment_labels(
    scores: torch.Tensor, video_labels: torch.Tensor, background: int = BACKGROUND
) -> torch.Tensor:
    """Segment pseudo-labels of the +PL baseline (seed 004 §5.3, Table 3).

    "The base model's segment-level label predictions on the training data ... taken as
    ground truth for fully-supervised re-training": the largest score of each segment
    (§4.1), restricted to the video's labels and background. The restriction gives +PL the
    same weak-label knowledge that eq 10 gives label refinement, so that the two differ only
    in segment- versus video-level predictions, which is what §5.3 compares. A
    background-only video is background everywhere.

    Args:
        scores: ``(B, T, C)`` raw segment scores of the base model.
        video_labels: ``(B, C)`` presence labels.
        background: index of the background class.

    Returns:
        ``(B, T)`` long class indices.
    """
    allowed = video_labels > 0  # (B, C)
    allowed[:, background] = True
    masked = scores.masked_fill(~allowed.unsqueeze(1), float("-inf"))  # (B, T, C)
    return masked.argmax(dim=-1)  # (B, T)


def dummy_slice_labels(video_labels: torch.Tensor, n_slices: int) -> torch.Tensor:
    r"""Slice labels of the +LR\ :sub:`dummy` baseline (seed 004 §5.3, Table 3).

    :math:`L^{(i)}[t_1, t_1 + N - 1] \equiv L^{(i)}` for every slice.

    Args:
        video_labels: ``(B, C)`` presence labels.
        n_slices: number of slices ``T1``.

    Returns:
        ``(B, T1, C)`` float labels.
    """
    return video_labels.unsqueeze(1).repeat(1, n_slices, 1)  # (B, T1, C)


def slice_truth(
    segment_labels: np.ndarray,
    starts: Sequence[int],
    window: int,
    n_classes: int = N_CLASSES,
    background: int = BACKGROUND,
) -> np.ndarray:
    """True event sets :math:`L^{(i)}[t_1, t_1 + N - 1]` of every slice (seed 004 §4.2).

    Args:
        segment_labels: ``(n, T)`` int class indices of the segments.
        starts: the ``T1`` 0-based window starts.
        window: window size ``N``.
        n_classes: number of classes including background.
        background: index of the background class.

    Returns:
        ``(n, T1, C)`` bool event sets, background column ``False`` (empty = background slice).
    """
    labels = np.asarray(segment_labels)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise PipelineError(
            f"segment labels: expected class indices in [0, {n_classes}), "
            f"found values in [{int(labels.min())}, {int(labels.max())}]"
        )
    present = np.eye(n_classes, dtype=bool)[labels]  # (n, T, C)
    sets = present[:, window_index(starts, window)].any(axis=2)  # (n, T1, C)
    sets[..., background] = False
    return sets


def _ratio(numerator: int, denominator: int) -> float | None:
    """``numerator / denominator``, ``None`` when the denominator is 0."""
    return numerator / denominator if denominator else None


def _scores(correct: int, predicted: int, true: int) -> dict[str, float | None]:
    """Precision, recall and F1 (``2 TP / (P + T)``) from counts; ``None`` where 0/0."""
    return {
        "precision": _ratio(correct, predicted),
        "recall": _ratio(correct, true),
        "f1": _ratio(2 * correct, predicted + true),
    }


def pseudo_label_quality(predicted: np.ndarray, truth: np.ndarray) -> dict[str, int | float | None]:
    """Slice pseudo-label quality against the true sets (seed 004 §5.3, "Detection Threshold").

    Event pairs: micro precision, recall and F1 over (slice, event class) pairs, the
    background column excluded (both inputs hold it ``False``). Background slices (empty
    sets) are scored separately as a detection task, like non-AVE segments in §5.1:
    ``background_precision``, ``background_recall``, ``background_f1``. ``exact_match`` is the
    share of slices whose predicted set equals the true one (empty equals empty).
    F1 is ``2 TP / (predicted + true)``: 0 when either side is non-empty and nothing matches.
    Undefined ratios (0/0) are ``None``.

    Args:
        predicted: ``(n, T1, C)`` bool predicted event sets (:func:`slice_label_sets`).
        truth: ``(n, T1, C)`` bool true event sets (:func:`slice_truth`).

    Returns:
        Counts ``slices``, ``true_pairs``, ``predicted_pairs``, ``correct_pairs``,
        ``background_slices``, ``predicted_background_slices`` and the ratios above.
    """
    predicted, truth = np.asarray(predicted, dtype=bool), np.asarray(truth, dtype=bool)
    if predicted.shape != truth.shape:
        raise PipelineError(
            f"slice labels: expected predicted and true sets of the same shape, found "
            f"{predicted.shape} and {truth.shape}"
        )
    counts = {
        "slices": int(np.prod(truth.shape[:-1])),
        "true_pairs": int(truth.sum()),
        "predicted_pairs": int(predicted.sum()),
        "correct_pairs": int((predicted & truth).sum()),
    }
    empty_predicted, empty_true = ~predicted.any(axis=-1), ~truth.any(axis=-1)  # (n, T1)
    background = {
        "background_slices": int(empty_true.sum()),
        "predicted_background_slices": int(empty_predicted.sum()),
    }
    pairs = _scores(counts["correct_pairs"], counts["predicted_pairs"], counts["true_pairs"])
    slices = _scores(
        int((empty_predicted & empty_true).sum()),
        background["predicted_background_slices"],
        background["background_slices"],
    )
    exact = int((predicted == truth).all(axis=-1).sum())
    return {
        **counts,
        **background,
        **pairs,
        **{f"background_{key}": value for key, value in slices.items()},
        "exact_match": _ratio(exact, counts["slices"]),
    }


LABEL_KINDS = ("refined", "dummy", "pseudo")
"""``refine.labels``: eqs 9-11 (+LR), the video label everywhere (+LR_dummy), or the base
model's segment predictions (+PL)."""


@torch.no_grad()
def estimate_slice_labels(
    model: torch.nn.Module,
    dataset,
    videos: np.ndarray,
    partners: np.ndarray,
    starts: Sequence[int],
    window: int,
    tau: float,
    batch_size: int,
    device: torch.device,
    precision: str = "fp32",
) -> np.ndarray:
    """Step 2 of seed 004 §4.2 over a dataset: the slice label sets of eqs 9-11.

    Video ``videos[k]`` of ``dataset`` is spliced with the background-only video
    ``partners[k]`` (eq 9), the base model's own video-level prediction of each synthetic
    video is masked by the video's labels (eq 10) and thresholded at ``tau`` (eq 11).

    Args:
        model: the base model :math:`\\Phi_0` (in eval mode).
        dataset: a dataset with ``__getitems__`` (items as in ``AVEDataset``).
        videos: ``(n,)`` dataset indices of the videos to label.
        partners: ``(n,)`` dataset indices of their second videos.
        starts: 0-based slice starts.
        window: slice length :math:`N`.
        tau: detection threshold :math:`\\tau`.
        batch_size: videos per forward pass (each makes ``T1`` synthetic videos).
        device: where the model lives.
        precision: the forward pass's precision, as in training
            (:func:`pipeline.training.precision.autocast`; default ``fp32``); probabilities are
            computed in float32.

    Returns:
        ``(n, T1, C)`` bool label sets (background column ``False``).
    """
    model.eval()
    return hooks.current().slice_labels(
        lambda v, p: _slice_label_sets(
            model, dataset, v, p, starts, window, tau, batch_size, device, precision
        ),
        videos,
        partners,
        batch_size,
    )


def _slice_label_sets(
    model, dataset, videos, partners, starts, window, tau, batch_size, device, precision
) -> np.ndarray:
    """:func:`estimate_slice_labels` of ``videos`` and ``partners``, batch by batch."""
    chunks = []
    for begin in range(0, len(videos), batch_size):
        first = dataset.__getitems__(videos[begin : begin + batch_size].tolist())
        second = dataset.__getitems__(partners[begin : begin + batch_size].tolist())
        synthetic = [
            synthetic_videos(first[k].to(device), second[k].to(device), starts, window)
            for k in ("audio", "visual")
        ]  # (B, T1, T, ...) each
        n = len(first["labels"])
        with autocast(device, precision):
            scores = model(*(x.flatten(0, 1) for x in synthetic)).float()  # (B * T1, T, C)
        probabilities = model.video_probabilities(scores).unflatten(0, (n, len(starts)))
        present = F.one_hot(first["labels"], scores.shape[-1]).amax(dim=1).to(device)  # (B, C)
        chunks.append(slice_label_sets(probabilities, present.float(), tau).cpu().numpy())
    return np.concatenate(chunks)


@dataclass
class SliceLabels:
    """The pseudo-labels of Step 2, as stored in ``data/refined/labels.npz``.

    Args:
        kind: one of :data:`LABEL_KINDS`.
        rows: ``(n,)`` store rows of the labelled training videos (train split order).
        starts: 0-based slice starts.
        window: slice length :math:`N`.
        sets: ``(n, T1, C)`` bool slice label sets.
        segments: ``(n, T)`` segment pseudo-labels for ``pseudo``, else ``(n, 0)``.
    """

    kind: str
    rows: np.ndarray
    starts: list[int]
    window: int
    sets: np.ndarray
    segments: np.ndarray


_SPEC = {
    "kind": (0, "U"),
    "rows": (1, "i"),
    "starts": (1, "i"),
    "window": (0, "i"),
    "sets": (3, "b"),
    "segments": (2, "i"),
}


def save_slice_labels(path: str | os.PathLike, labels: SliceLabels) -> None:
    """Write :class:`SliceLabels` as ``.npz`` (plain arrays, no pickle), atomically."""
    save_npz(
        path,
        {
            "kind": np.array(labels.kind),
            "rows": np.asarray(labels.rows, dtype=np.int64),
            "starts": np.asarray(labels.starts, dtype=np.int64),
            "window": np.array(labels.window, dtype=np.int64),
            "sets": np.asarray(labels.sets, dtype=bool),
            "segments": np.asarray(labels.segments, dtype=np.int64),
        },
    )


def load_slice_labels(path: str | os.PathLike) -> SliceLabels:
    """Read :func:`save_slice_labels`' file; :class:`PipelineError` names what is wrong."""
    path = Path(path)
    data = load_npz(path, _SPEC)
    kind, rows, sets, segments = str(data["kind"]), data["rows"], data["sets"], data["segments"]
    starts = data["starts"].tolist()
    if kind not in LABEL_KINDS:
        raise fail(path, "kind", f"one of {list(LABEL_KINDS)}", repr(kind))
    if sets.shape != (len(rows), len(starts), N_CLASSES):
        raise fail(path, "sets", f"shape {(len(rows), len(starts), N_CLASSES)}", str(sets.shape))
    if kind == "pseudo" and segments.shape[0] != len(rows):
        raise fail(path, "segments", f"shape ({len(rows)}, T)", str(segments.shape))
    return SliceLabels(kind, rows, starts, int(data["window"]), sets, segments)
