r"""Temporal label refinement, the auxiliary objective and their baselines (seed 004 §4.2-§4.3).

The math here is model-agnostic: models map ``(audio, visual)`` to raw segment scores
``(B, T, C)``, and each function takes those scores (or the features that go in) plus the
base model's own video-level predictor or weak loss where the paper says "the base model".

Steps of seed 004 §4.2:

1. train a base model :math:`\Phi_0` weakly, with the auxiliary loss of §4.3 eqs 15-18
   (:func:`synthetic_videos`, :func:`union_labels`, :func:`auxiliary_loss`);
2. for every training video :math:`V^{(i)}` and window start :math:`t_1`
   (:func:`slice_starts`), build the synthetic video of eq 9 with a background-only
   :math:`V^{(j)}` (§5.1), and threshold the filtered video prediction of eqs 10-11
   (:func:`slice_label_sets`);
3. retrain with the slice-level loss of eqs 12-13 (:func:`label_refinement_loss`).

Window starts are 0-based here: the paper's :math:`t_1 \in \{1, 1 + s, \dots, T - N + 1\}`
is ``[0, s, ..., T - N]``. Label *sets* are ``(..., C)`` bool masks over event classes whose
background column is always ``False``; an empty set is a background-only slice. Label
*vectors* are the float presence labels of seed 004 §3 (background = 1 iff no event).
"""

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pipeline import hooks
from pipeline.data.store import BACKGROUND, N_CLASSES
from pipeline.errors import PipelineError
from pipeline.npz import fail, load_npz, save_npz
from pipeline.precision import autocast

VideoLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""A base model's weak loss ``g``: raw scores ``(B, T, C)`` and labels ``(B, C)`` → scalar,
pooling over time itself and averaging over the batch (e.g. a model's ``wsel_loss``)."""


def validate_window(T: int, window: int, stride: int) -> None:
    r"""Check a refinement window ``N`` and stride ``s`` (seed 004 §4.2, §4.3, App. A.2).

    The rules: :math:`s \geq 1`; :math:`1 \leq N \leq T`; :math:`s \mid (T - N)` so that the
    slices cover every segment (A.2 (i)); :math:`N < \frac{T+1}{2}` so that the complements
    of the windows cover every segment of the second video and eq 14 holds (§4.3, A.2 (iii)).

    Args:
        T: segments per video.
        window: window size ``N`` (``refine.window``).
        stride: stride ``s`` (``refine.stride``).

    Raises:
        PipelineError: naming the parameter, the rule broken and the values.
    """
    if stride < 1:
        raise PipelineError(f"refine.stride: expected stride >= 1, found {stride}")
    if not 1 <= window <= T:
        raise PipelineError(f"refine.window: expected 1 <= window <= T = {T}, found {window}")
    if 2 * window >= T + 1:
        raise PipelineError(
            f"refine.window: expected window < (T + 1) / 2 = {(T + 1) / 2} (seed 004 eq 14), "
            f"found {window}"
        )
    if (T - window) % stride:
        raise PipelineError(
            f"refine.stride: expected stride to divide T - window = {T} - {window} = "
            f"{T - window} so the slices cover every segment, found stride {stride}"
        )


def slice_starts(T: int, window: int, stride: int) -> list[int]:
    r"""0-based window starts :math:`t_1` (seed 004 §4.2 eq 13), after :func:`validate_window`.

    There are :math:`T_1 = (T - N)/s + 1` of them, e.g. ``[0, 2, 4, 6]`` for
    ``T = 10, N = 4, s = 2``.

    Args:
        T: segments per video.
        window: window size ``N``.
        stride: stride ``s``.

    Returns:
        The ``T1`` starts ``[0, s, ..., T - N]``.
    """
    validate_window(T, window, stride)
    return list(range(0, T - window + 1, stride))


def _window_index(starts: Sequence[int], window: int) -> np.ndarray:
    """Segment indices of each slice: ``(T1, N)`` with row ``k`` = ``starts[k] + [0, N)``."""
    return np.asarray(starts, dtype=np.int64)[:, None] + np.arange(window)  # (T1, N)


def synthetic_videos(
    first: torch.Tensor, second: torch.Tensor, starts: Sequence[int], window: int
) -> torch.Tensor:
    r"""The synthetic videos :math:`\tilde{V}^{(i;t_1)}` of seed 004 §4.2 eq 9, for all :math:`t_1`.

    Segment ``t`` of synthetic video ``k`` is ``first[:, t]`` inside the window
    ``[starts[k], starts[k] + N - 1]`` and ``second[:, t]`` outside it. Works for any
    per-segment features (audio ``(B, T, A)``, visual maps ``(B, T, 7, 7, 512)``) and is
    differentiable in both inputs.

    The result is ``T1`` times the size of one input and is written once (a broadcast
    :func:`torch.where`, no intermediate copies); callers that hold large maps should chunk
    over the batch and flatten ``(B, T1)`` for the model.

    Args:
        first: ``(B, T, ...)`` features of the videos :math:`V^{(i)}` whose windows are kept.
        second: ``(B, T, ...)`` features of the videos :math:`V^{(j)}` that fill the rest.
        starts: the ``T1`` 0-based window starts (:func:`slice_starts`).
        window: window size ``N``.

    Returns:
        ``(B, T1, T, ...)`` synthetic videos.
    """
    if first.shape != second.shape:
        raise PipelineError(
            f"synthetic videos: expected two feature tensors of the same shape, found "
            f"{tuple(first.shape)} and {tuple(second.shape)}"
        )
    t = torch.arange(first.shape[1], device=first.device)  # (T,)
    begin = torch.as_tensor(starts, device=first.device)[:, None]  # (T1, 1)
    keep = (t >= begin) & (t < begin + window)  # (T1, T)
    keep = keep.view(1, *keep.shape, *([1] * (first.dim() - 2)))  # (1, T1, T, 1, ...)
    return torch.where(keep, first.unsqueeze(1), second.unsqueeze(1))  # (B, T1, T, ...)


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
    (:func:`slice_label_vectors`). A background-only video therefore gets background slices.

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


def slice_label_vectors(sets: torch.Tensor, background: int = BACKGROUND) -> torch.Tensor:
    r"""Presence label vectors :math:`Y^{(i;t_1)}` of event sets (seed 004 §3, §4.2 step 3).

    Each event of the set is 1; background is 1 iff the set is empty, as for the video-level
    labels of :func:`pipeline.losses.video_labels_from_segments`.

    Args:
        sets: ``(..., C)`` bool event sets (background column ignored).
        background: index of the background class.

    Returns:
        ``(..., C)`` float labels in {0, 1}, at least one 1 per slice.
    """
    is_background = torch.arange(sets.shape[-1], device=sets.device) == background  # (C,)
    events = sets.bool() & ~is_background  # (..., C)
    vectors = events.float()  # (..., C)
    vectors[..., background] = (~events.any(dim=-1)).float()  # (...,)
    return vectors


def label_refinement_loss(
    scores: torch.Tensor,
    slice_labels: torch.Tensor,
    starts: Sequence[int],
    window: int,
    video_loss: VideoLoss,
) -> torch.Tensor:
    r"""Label-refinement loss :math:`\mathcal{L}_{LR}` of seed 004 §4.2 eqs 12-13.

    .. math::
        \hat{Y}^{(i;t_1)} = \mathrm{SoftMax}(\mathrm{Pool}(\{x_t^{(i)}\}_{t=t_1}^{t_1+N-1})),
        \qquad \mathcal{L}_{LR} = \frac{1}{T_1} \sum_{t_1} g(\hat{Y}^{(i;t_1)}, Y^{(i;t_1)})

    on the scores of the *original* video. Each slice of ``N`` segments is one MIL bag
    ("MIL pooling is indifferent to the number of instances"), so ``video_loss`` (the base
    model's weak loss, which pools and applies ``g`` itself) is called once on the ``B * T1``
    bags; its batch mean is the mean over slices of eq 13 averaged over the videos. For the
    AVE baseline, :func:`pipeline.losses.mil_loss` on a slice is exactly the eq 12 softmax of
    the max over the slice followed by the multilabel soft margin ``g`` of eq 6.

    Args:
        scores: ``(B, T, C)`` raw segment scores of the original videos.
        slice_labels: ``(B, T1, C)`` float slice labels (:func:`slice_label_vectors`).
        starts: the ``T1`` 0-based window starts.
        window: window size ``N``.
        video_loss: the base model's weak loss ``(B', N, C), (B', C)`` → scalar.

    Returns:
        The scalar loss.
    """
    batch, _, n_classes = scores.shape
    if slice_labels.shape != (batch, len(starts), n_classes):
        raise PipelineError(
            f"slice labels: expected shape {(batch, len(starts), n_classes)}, "
            f"found {tuple(slice_labels.shape)}"
        )
    index = torch.as_tensor(_window_index(starts, window), device=scores.device)  # (T1, N)
    slices = scores[:, index]  # (B, T1, N, C)
    return video_loss(slices.flatten(0, 1), slice_labels.flatten(0, 1))


def union_labels(
    labels_i: torch.Tensor, labels_j: torch.Tensor, background: int = BACKGROUND
) -> torch.Tensor:
    r"""Video-level labels :math:`Y^{(ij)}` of :math:`L^{(i)} \cup L^{(j)}` (seed 004 eqs 14, 17).

    Events are the union of both videos' events; background is 1 iff the union is empty,
    the presence convention of §3 that :math:`\mathcal{L}_{MIL}` trains with. The synthetic
    videos of a foreground :math:`V^{(i)}` and a background-only :math:`V^{(j)}` (§5.1) do
    contain background segments, but so do most foreground videos whose label has
    background 0; eq 14 speaks of event sets only. With a background-only :math:`V^{(j)}`
    this is :math:`Y^{(i)}`.

    Args:
        labels_i: ``(B, C)`` presence labels of the first videos.
        labels_j: ``(B, C)`` presence labels of the second videos.
        background: index of the background class.

    Returns:
        ``(B, C)`` float labels in {0, 1}.
    """
    events = torch.maximum(labels_i, labels_j) > 0  # (B, C)
    return slice_label_vectors(events, background)


def auxiliary_scores(synthetic_scores: torch.Tensor) -> torch.Tensor:
    r"""Pooled scores :math:`\tilde{x}^{(i)}` of seed 004 §4.3 eqs 15-16 with Pool = max (eq 6).

    .. math::
        \tilde{x}^{(i;t_1)} = \max_t \tilde{x}_t^{(i;t_1)}, \qquad
        \tilde{x}^{(i)} = \max_{t_1} \tilde{x}^{(i;t_1)}

    Args:
        synthetic_scores: ``(B, T1, T, C)`` raw scores of the synthetic videos.

    Returns:
        ``(B, C)`` pooled scores.
    """
    return synthetic_scores.amax(dim=2).amax(dim=1)  # (B, T1, C) -> (B, C)


def auxiliary_loss(
    synthetic_scores: torch.Tensor, union: torch.Tensor, video_loss: VideoLoss
) -> torch.Tensor:
    r"""Auxiliary loss :math:`\mathcal{L}_A` of seed 004 §4.3 eqs 15-18.

    Pooling within and then across the ``T1`` synthetic videos (eqs 15-16) equals pooling
    the ``T1 * T`` segments as one MIL bag, both for max pooling (a max of maxes) and for
    mean pooling (a mean of equal-size means). So ``video_loss`` (the base model's weak loss)
    is applied to that bag, which applies the model's own Pool, the softmax of eq 17 and its
    ``g`` of eq 18. For the AVE baseline with :func:`pipeline.losses.mil_loss` this is the
    multilabel soft margin on :math:`\mathrm{SoftMax}(\tilde{x}^{(i)})`, with
    :math:`\tilde{x}^{(i)}` of :func:`auxiliary_scores`.

    Args:
        synthetic_scores: ``(B, T1, T, C)`` raw scores of the synthetic videos.
        union: ``(B, C)`` labels :math:`Y^{(ij)}` (:func:`union_labels`).
        video_loss: the base model's weak loss ``(B, T', C), (B, C)`` → scalar.

    Returns:
        The scalar loss, averaged over the batch.
    """
    return video_loss(synthetic_scores.flatten(1, 2), union)  # bag of (B, T1 * T, C)


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
    sets = present[:, _window_index(starts, window)].any(axis=2)  # (n, T1, C)
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
            (:func:`pipeline.precision.autocast`; default ``fp32``); probabilities are
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
