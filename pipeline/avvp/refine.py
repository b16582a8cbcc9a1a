r"""Temporal label refinement on AVVP: HAN + LR (seed 004 §4.2-§4.3 and Appendix A.1).

Seed 004's refinement, written for single-label AVEL with a softmax over ``C + 1``
classes, carried over to LLP's multi-label weak labels and HAN's per-modality outputs:

* **Per-modality slice labels (eqs 9-11).** For training video :math:`V^{(i)}`, window
  start :math:`t_1` and second video :math:`V^{(j)}`, the synthetic video
  :math:`\tilde V^{(i;t_1)}` keeps the segments :math:`[t_1, t_1 + N - 1]` of
  :math:`V^{(i)}` and takes the others from :math:`V^{(j)}`, in all three feature streams
  (audio, the frames of each segment, the snippet). HAN's modality-level predictions
  :math:`\bar p^a, \bar p^v` of it are filtered by the weak labels,
  :math:`\hat Z^m = Y^{(i)} \odot \bar p^m(\tilde V^{(i;t_1)})`, and thresholded,
  :math:`L^{(i)}_m[t_1, t_1 + N - 1] = \{c : \hat Z^m(c) \ge \tau\}`, for ``m`` = audio
  and visual (:func:`estimate_slice_labels`). Eq 8 holds per modality: a class absent
  from :math:`V^{(j)}`'s weak labels is neither heard nor seen in it.
* **Second video.** LLP has no background-only videos (AVE's choice, seed 004 §5.1), so
  :math:`V^{(j)}` is drawn uniformly, with a seeded generator, among the *training* videos
  whose weak labels share no class with :math:`V^{(i)}`'s (the condition
  :math:`L^{(i)} \cap L^{(j)} = \emptyset` of eq 8 itself; :func:`draw_partners`).
* **Re-training (eqs 12-13).** HAN is retrained from scratch with its weak loss plus
  :math:`\mathcal{L}_{LR} = \frac{1}{T_1}\sum_{t_1} g(\text{window pooling})`, where the
  attentive MMIL pooling runs over the window's segments only (eq 12: the temporal
  attention renormalised over them) and ``g`` is HAN's guided loss with the slice labels
  as targets: the audio and visual pooled probabilities against the audio and visual
  slice labels (no smoothing: they are already modality-specific), the video-level one
  against their union (:func:`refinement_loss`).
* **Auxiliary objective (eqs 15-18), optional.** In Step 1, the :math:`T_1` synthetic
  videos of :math:`V^{(i)}` and its partner are pooled within (MMIL) and then across
  (maximum over :math:`t_1`, seed 004's max pooling of eq 16 on probabilities) and
  trained with HAN's weak loss towards :math:`Y^{(i)} \cup Y^{(j)}`
  (:func:`auxiliary_loss`). Table 6's row is called HAN + LR, and its HAN row is the
  published HAN, so the default Step 1 is plain HAN (``avvp.refine.auxiliary: false``)
  and the two rows share their base model.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pipeline.errors import PipelineError
from pipeline.losses import AVVPOutput, Pooled, han_loss, mmil_pool
from pipeline.npz import fail, load_npz, save_npz
from pipeline.refinement.slices import synthetic_videos

STREAMS = ("audio", "frames", "snippets")


def draw_partners(weak: np.ndarray, seed: int) -> np.ndarray:
    """For each video, a uniformly drawn other video with no weak label in common.

    Args:
        weak: ``(n, C)`` 0/1 weak labels.
        seed: seed of the draw.

    Returns:
        ``(n,)`` partner indices.

    Raises:
        PipelineError: when a video has no such partner (naming it).
    """
    weak = np.asarray(weak) > 0
    sets, which = np.unique(weak, axis=0, return_inverse=True)  # few distinct label sets
    which = which.reshape(-1)
    disjoint = ~(sets.astype(np.int64) @ weak.T.astype(np.int64)).astype(bool)  # (S, n)
    candidates = [np.flatnonzero(row) for row in disjoint]
    rng = np.random.default_rng(seed)
    partners = np.empty(len(weak), dtype=np.int64)
    for i, s in enumerate(which):
        if candidates[s].size == 0:
            raise PipelineError(
                f"refinement: training video {i} shares a weak label with every other "
                "video; no second video for eq 8"
            )
        partners[i] = rng.choice(candidates[s])
    return partners


def window_masks(starts: Sequence[int], window: int, T: int, device=None) -> torch.Tensor:
    """``(T1, T)`` bool: the segments of each window ``[t_1, t_1 + N)``."""
    t = torch.arange(T, device=device)
    begin = torch.as_tensor(starts, device=device)[:, None]
    return (t >= begin) & (t < begin + window)


def synthetic_inputs(
    first: dict[str, torch.Tensor],
    second: dict[str, torch.Tensor],
    starts: Sequence[int],
    window: int,
) -> dict[str, torch.Tensor]:
    """The synthetic videos of eq 9 for every window, flattened to ``(B * T1, ...)``.

    Args:
        first: the streams of :data:`STREAMS` of :math:`V^{(i)}`, ``(B, T or T * k, D)``.
        second: the same of the partners :math:`V^{(j)}`.
        starts: the ``T1`` window starts.
        window: ``N``.
    """
    out = {}
    T = first["audio"].shape[1]
    for name in STREAMS:
        a, b = first[name], second[name]
        B, rows, D = a.shape
        shape = (B, T, rows // T, D)  # the k frames of a segment travel together
        mixed = synthetic_videos(a.reshape(shape), b.reshape(shape), starts, window)
        out[name] = mixed.reshape(B * len(starts), rows, D)
    return out


def _run(model: nn.Module, inputs: dict[str, torch.Tensor]) -> AVVPOutput:
    return model(inputs["audio"], inputs["frames"], inputs["snippets"])


@torch.no_grad()
def estimate_slice_labels(
    model: nn.Module,
    streams: dict[str, torch.Tensor],
    weak: torch.Tensor,
    partners: np.ndarray,
    starts: Sequence[int],
    window: int,
    tau: float,
    batch_size: int = 64,
) -> np.ndarray:
    """Per-modality slice labels of eqs 9-11 for every video: ``(n, T1, 2, C)`` bool.

    Args:
        model: the trained base model :math:`\\Phi_0` (HAN), on the device of ``streams``.
        streams: the videos' :data:`STREAMS`, each ``(n, ...)``.
        weak: ``(n, C)`` weak labels.
        partners: ``(n,)`` second videos (:func:`draw_partners`).
        starts: window starts (:func:`pipeline.refinement.labels.slice_starts`).
        window: ``N``.
        tau: detection threshold of eq 11.
        batch_size: videos per forward pass (each makes ``T1`` synthetic ones).
    """
    model.eval()
    partners = torch.as_tensor(partners, device=weak.device)
    out = []
    for start in range(0, len(weak), batch_size):
        index = torch.arange(start, min(start + batch_size, len(weak)), device=weak.device)
        first = {name: streams[name][index] for name in STREAMS}
        second = {name: streams[name][partners[index]] for name in STREAMS}
        pooled = mmil_pool(_run(model, synthetic_inputs(first, second, starts, window)))
        probs = torch.stack([pooled.audio, pooled.visual], dim=1).float()  # (B * T1, 2, C)
        probs = probs.view(len(index), len(starts), 2, -1)  # (B, T1, 2, C)
        out.append((weak[index][:, None, None, :] * probs >= tau).cpu().numpy())  # eqs 10-11
    return np.concatenate(out)


def refinement_loss(
    output: AVVPOutput, slice_labels: torch.Tensor, starts: Sequence[int], window: int
) -> torch.Tensor:
    """:math:`\\mathcal{L}_{LR}` of eqs 12-13 with HAN's pooling and loss (see the module).

    Args:
        output: HAN's output on the (whole) training videos.
        slice_labels: ``(B, T1, 2, C)`` 0/1 audio and visual slice labels.
        starts: window starts.
        window: ``N``.
    """
    masks = window_masks(starts, window, output.probs.shape[1], output.probs.device)
    slice_labels = slice_labels.float()
    total = 0.0
    for k, mask in enumerate(masks):
        audio, visual = slice_labels[:, k, 0], slice_labels[:, k, 1]
        union = torch.maximum(audio, visual)
        pooled = mmil_pool(output, mask)
        total = total + han_loss(pooled, union, audio_labels=audio, visual_labels=visual)
    return total / len(masks)


def auxiliary_loss(
    model: nn.Module,
    first: dict[str, torch.Tensor],
    second: dict[str, torch.Tensor],
    union: torch.Tensor,
    starts: Sequence[int],
    window: int,
    audio_smoothing: float = 0.0,
    visual_smoothing: float = 0.1,
) -> torch.Tensor:
    """:math:`\\mathcal{L}_A` of eqs 15-18 for HAN (see the module docstring).

    Args:
        model: HAN in training.
        first: the streams of the batch's videos.
        second: the streams of their partners.
        union: ``(B, C)`` the union of both videos' weak labels.
        starts: window starts.
        window: ``N``.
        audio_smoothing: as in :func:`pipeline.losses.han_loss`. (default: 0.0)
        visual_smoothing: as there. (default: 0.1)
    """
    B = union.shape[0]
    pooled = mmil_pool(_run(model, synthetic_inputs(first, second, starts, window)))

    def across(p: torch.Tensor) -> torch.Tensor:  # eq 16: max over the T1 synthetic videos
        return p.view(B, len(starts), -1).amax(dim=1)

    combined = Pooled(across(pooled.video), across(pooled.audio), across(pooled.visual))
    return han_loss(combined, union, audio_smoothing, visual_smoothing)


def slice_truth(dense: np.ndarray, starts: Sequence[int], window: int) -> np.ndarray:
    """``(n, T1, 2, C)`` bool: which classes occur per modality in each window (dense truth)."""
    masks = window_masks(starts, window, dense.shape[-1]).numpy()  # (T1, T)
    return (np.asarray(dense)[:, None] * masks[None, :, None, None, :]).any(axis=-1) > 0


def slice_quality(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float | None]:
    """Precision, recall and F1 of slice labels against the truth, per modality and pooled.

    Args:
        predicted: ``(n, T1, 2, C)`` estimated slice labels.
        truth: ``(n, T1, 2, C)`` true slice labels (:func:`slice_truth`).
    """
    result = {}
    for name, index in (("audio", [0]), ("visual", [1]), ("all", [0, 1])):
        p, t = predicted[:, :, index].astype(bool), truth[:, :, index].astype(bool)
        hits, n_pred, n_true = int((p & t).sum()), int(p.sum()), int(t.sum())
        precision = hits / n_pred if n_pred else None
        recall = hits / n_true if n_true else None
        f1 = 2 * hits / (n_pred + n_true) if n_pred + n_true else None
        result |= {f"{name}_precision": precision, f"{name}_recall": recall, f"{name}_f1": f1}
    return result


@dataclass
class AVVPSliceLabels:
    """The per-modality slice labels of the training videos (the avvp_refine stage's file).

    Args:
        names: ``filename`` of each training video, in the split's order.
        starts: the window starts; window: ``N``.
        labels: ``(n, T1, 2, C)`` bool audio and visual slice labels.
    """

    names: np.ndarray
    starts: np.ndarray
    window: int
    labels: np.ndarray


def save_avvp_slice_labels(path: str | os.PathLike, labels: AVVPSliceLabels) -> None:
    """Write :class:`AVVPSliceLabels` as an ``.npz`` file, atomically."""
    save_npz(
        path,
        {
            "names": np.asarray(labels.names, dtype=str),
            "starts": np.asarray(labels.starts, dtype=np.int64),
            "window": np.asarray(labels.window, dtype=np.int64),
            "labels": np.asarray(labels.labels, dtype=bool),
        },
    )


def load_avvp_slice_labels(path: str | os.PathLike, names: Sequence[str]) -> AVVPSliceLabels:
    """Read the file of :func:`save_avvp_slice_labels` and check it fits the videos ``names``."""
    spec = {"names": (1, "U"), "starts": (1, "i"), "window": (0, "i"), "labels": (4, "b")}
    saved = load_npz(path, spec)
    if saved["names"].tolist() != list(names):
        found = f"{len(saved['names'])} other videos"
        raise fail(path, "names", f"the {len(names)} training videos of the store", found)
    if saved["labels"].shape[:2] != (len(names), len(saved["starts"])):
        raise fail(path, "labels", "(videos, windows, 2, C)", str(saved["labels"].shape))
    return AVVPSliceLabels(saved["names"], saved["starts"], int(saved["window"]), saved["labels"])
