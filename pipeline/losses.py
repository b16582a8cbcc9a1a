"""Weak labels, the MIL video predictions and the training losses (seed 004 §3, §4.1).

``scores`` are a model's raw segment-level class scores ``(B, T, C)`` (seed 004 §4.1 eq 5).
Weakly-supervised training (WSEL) matches a video-level prediction to the presence labels
of §3: the AVE baseline's max pooling of eq 6 with :func:`mil_loss`, or the mean pooling of
DPNet and EDRNet (the default of :class:`pipeline.models.base.AVELModel`) with
:func:`mean_pooled_loss`. Supervised training (SEL) uses :func:`sel_loss` on the segment
labels.
"""

import math

import torch
import torch.nn.functional as F

from pipeline.errors import PipelineError


def video_prediction(scores: torch.Tensor) -> torch.Tensor:
    r"""MIL video-level prediction (seed 004 §4.1 eq 6).

    .. math::
        \hat{Y} = \mathrm{SoftMax}(\mathrm{MaxPool}(\{x_t\}_{t=1}^T))

    i.e. the maximum raw score of each class over time, then a softmax over classes.

    Args:
        scores: ``(B, T, C)`` raw segment scores.

    Returns:
        ``(B, C)`` class probabilities.
    """
    return torch.softmax(scores.amax(dim=1), dim=-1)  # (B, C)


def mil_loss(scores: torch.Tensor, video_labels: torch.Tensor) -> torch.Tensor:
    r"""Weakly-supervised MIL loss (seed 004 §4.1 eq 6 and the sentence after it).

    ":math:`\hat{Y}` is optimized to match :math:`Y` with the multi-class soft margin loss":

    .. math::
        \mathcal{L}_{MIL} = -\frac{1}{C} \sum_c \left[ Y_c \log \sigma(\hat{Y}_c)
        + (1 - Y_c) \log(1 - \sigma(\hat{Y}_c)) \right],

    averaged over the batch (``multilabel_soft_margin_loss``). As written, and as in Tian et
    al.'s code, the loss is applied to the softmax *probabilities* :math:`\hat{Y}` of eq 6,
    not to the raw max-pooled scores.

    Args:
        scores: ``(B, T, C)`` raw segment scores.
        video_labels: ``(B, C)`` float presence labels in {0, 1}
            (see :func:`video_labels_from_segments`).

    Returns:
        The scalar loss.
    """
    return F.multilabel_soft_margin_loss(video_prediction(scores), video_labels)


def _log_mean_pooled(scores: torch.Tensor) -> torch.Tensor:
    """Log of the mean over time of the segment softmax, ``(B, T, C)`` -> ``(B, C)``."""
    log_segments = scores.log_softmax(dim=-1)  # (B, T, C): log y_t
    return log_segments.logsumexp(dim=1) - math.log(scores.shape[1])  # (B, C)


def mean_pooled_probabilities(scores: torch.Tensor) -> torch.Tensor:
    r"""MIL video-level prediction: the mean of the segment predictions (seed 001 §3.2).

    .. math::
        \hat{y} = \frac{1}{T} \sum_t \hat{y}_t, \quad
        \hat{y}_t = \mathrm{Softmax}(x_t) \text{ (seed 001 eq 11; seed 002 eq 7)}

    Args:
        scores: ``(B, T, C)`` raw segment scores.

    Returns:
        ``(B, C)`` class probabilities.
    """
    return _log_mean_pooled(scores).exp()  # (B, C)


def mean_pooled_loss(scores: torch.Tensor, video_labels: torch.Tensor) -> torch.Tensor:
    r"""WSEL loss: MIL mean pooling and cross-entropy with the video label (seed 001 §3.2).

    "we use MIL pooling to aggregate the segment predictions into a video level
    prediction :math:`\hat{y}`" and "the cross-entropy loss": the segment predictions
    are the softmax outputs :math:`\hat{y}_t`, pooled by their mean
    (:func:`mean_pooled_probabilities`),

    .. math::
        \mathcal{L}_{WSEL} = -\sum_c \bar{y}^c \log \hat{y}^c, \quad
        \bar{y}^c = y^c / \textstyle\sum_{c'} y^{c'},

    averaged over the batch. The mean is a distribution over classes (a max over time
    is not, and cross-entropy needs one) and gives every segment a gradient.
    :math:`y` is one-hot in seed 001 §3.1; presence labels with several classes are
    normalised to a distribution. Seed 002 names, for WSEL, only the mean pooling of its
    eq 7; EDRNet uses this loss too.

    Args:
        scores: ``(B, T, C)`` raw segment scores.
        video_labels: ``(B, C)`` float labels in {0, 1}, at least one 1 per video.

    Returns:
        The scalar loss.
    """
    if video_labels.shape != (scores.shape[0], scores.shape[2]):
        raise PipelineError(
            f"video_labels: expected shape {(scores.shape[0], scores.shape[2])}, "
            f"found {tuple(video_labels.shape)}"
        )
    totals = video_labels.sum(dim=-1, keepdim=True)  # (B, 1)
    if (totals <= 0).any():
        raise PipelineError("video_labels: expected at least one class per video")
    log_video = _log_mean_pooled(scores)  # (B, C)
    return -(video_labels / totals * log_video).sum(dim=-1).mean()


def sel_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Supervised loss: mean cross-entropy of the raw scores over all segments.

    Args:
        scores: ``(B, T, C)`` raw segment scores.
        labels: ``(B, T)`` long segment class indices.

    Returns:
        The scalar loss, averaged over the ``B * T`` segments.
    """
    return F.cross_entropy(scores.flatten(0, 1), labels.flatten())  # over (B*T, C)


def video_labels_from_segments(
    labels: torch.Tensor, n_classes: int = 29, background: int = 28
) -> torch.Tensor:
    r"""Weak video-level labels from segment labels (seed 004 §3).

    :math:`Y(c) = 1` for each event class ``c`` present in some segment, and
    :math:`Y(\text{background}) = 1` only if no segment contains an event. These are
    presence labels, not the duration-proportional :math:`\frac{1}{T}\sum_t y_t` of some
    prior work (rejected in seed 004 §3).

    Args:
        labels: ``(B, T)`` long segment class indices in ``[0, n_classes)``.
        n_classes: number of classes including background (default 29).
        background: index of the background class (default 28).

    Returns:
        ``(B, n_classes)`` float labels in {0, 1}.
    """
    if labels.numel() and (labels.min() < 0 or labels.max() >= n_classes):
        raise PipelineError(
            f"segment labels: expected class indices in [0, {n_classes}), "
            f"found values in [{int(labels.min())}, {int(labels.max())}]"
        )
    present = F.one_hot(labels, n_classes).amax(dim=1).float()  # (B, C)
    present[:, background] = (labels == background).all(dim=1).float()  # (B,)
    return present


def _patches(row: list[int]) -> list[tuple[int, int, int]]:
    """Maximal runs of one class in a row of segment labels: ``(start, end, class)``."""
    runs, start = [], 0
    for t in range(1, len(row) + 1):
        if t == len(row) or row[t] != row[start]:
            runs.append((start, t, row[start]))
            start = t
    return runs


def _mean_weights(length: int, start: int, end: int, skip: int = -1) -> list[float]:
    """Weights over ``length`` segments that average ``[start, end)`` without ``skip``."""
    count = end - start - (start <= skip < end)
    return [1.0 / count if start <= t < end and t != skip else 0.0 for t in range(length)]


def _difference(first: list[float], second: list[float]) -> list[float]:
    """Element-wise ``first - second``."""
    return [a - b for a, b in zip(first, second, strict=True)]


def _half_terms(
    rows: list[list[int]], background: int, sea: bool
) -> tuple[list[list[float]], list[int]]:
    """Weights of (first half mean - second half mean) of every land or sea, and its video.

    The halves are the first and the last ``n // 2`` of a patch's ``n`` segments: the
    middle segment of an odd patch is in neither (in both, it would cancel out), and a
    patch of one segment has no halves, hence no term.
    """
    weights, videos = [], []
    for video, row in enumerate(rows):
        for start, end, label in _patches(row):
            half = (end - start) // 2
            if half and (label == background) == sea:
                first = _mean_weights(len(row), start, start + half)
                weights.append(_difference(first, _mean_weights(len(row), end - half, end)))
                videos.append(video)
    return weights, videos


def _shore_terms(
    rows: list[list[int]], background: int
) -> tuple[list[list[float]], list[list[float]], list[int]]:
    """Weights of (shore - land mean) and (shore - sea mean) of every shore, and its video."""
    to_land, to_sea, videos = [], [], []
    for video, row in enumerate(rows):
        runs = _patches(row)
        for i, (start, end, label) in enumerate(runs):
            if label == background or end - start < 2:
                continue  # a sea, or a land with no segment besides its border
            for side, anchor in ((i - 1, start), (i + 1, end - 1)):
                if not 0 <= side < len(runs) or runs[side][2] != background:
                    continue  # video edge or another event class: a missing sea side
                shore = [float(t == anchor) for t in range(len(row))]
                land = _mean_weights(len(row), start, end, skip=anchor)
                to_land.append(_difference(shore, land))
                to_sea.append(_difference(shore, _mean_weights(len(row), *runs[side][:2])))
                videos.append(video)
    return to_land, to_sea, videos


def _norms(features: torch.Tensor, weights: list[list[float]], videos: list[int]) -> torch.Tensor:
    """:math:`\\|w X_v\\|_2` for each weight row ``w`` over the segments of its video ``v``."""
    w = torch.tensor(weights, dtype=features.dtype, device=features.device)  # (n, T)
    w = w.reshape(len(weights), features.shape[1])  # (n, T), also when n = 0
    index = torch.tensor(videos, dtype=torch.long, device=features.device)  # (n,)
    combined = torch.einsum("nt,ntd->nd", w, features[index])  # (n, d)
    return torch.linalg.vector_norm(combined, dim=-1)  # (n,)


def _per_video_mean(values: torch.Tensor, videos: list[int], batch: int) -> torch.Tensor:
    """Mean over each video's terms, then over the ``batch`` videos (0 for a video without)."""
    index = torch.tensor(videos, dtype=torch.long, device=values.device)  # (n,)
    counts = torch.bincount(index, minlength=batch).to(values)  # (B,)
    return (values / counts[index]).sum() / batch


def land_shore_sea_loss(
    features: torch.Tensor, labels: torch.Tensor, margin: float, background: int = 28
) -> dict[str, torch.Tensor]:
    r"""The Land-Shore-Sea loss terms of seed 002 eqs 8-10.

    A *land* is a maximal run of segments of one event class, a *sea* a maximal run of
    background; a *shore* is a land's border segment next to a sea. For video :math:`i`:

    .. math::
        \mathcal{L}_{land}^i &= \frac{1}{N_l^i} \sum_l
        \|\overline{L}_l^{1st} - \overline{L}_l^{2nd}\|_2 \quad \text{(eq 8; seas: eq 9)}

        \mathcal{L}_{shore}^i &= \frac{1}{N_{sh}^i} \sum_{s'}
        [\|Sh_{s'} - \overline{L}_{s'}\|_2 - \|Sh_{s'} - \overline{S}_{s'}\|_2 + \alpha]_+
        \quad \text{(eq 10)}

    and each term is averaged over the :math:`B` videos of the batch. Choices where the
    paper is vague:

    - halves: the first and the last :math:`\lfloor n/2 \rfloor` segments of an
      :math:`n`-segment patch; the middle segment of an odd patch is in neither, and a
      patch of 1 segment is too short to halve: no term, not counted in :math:`N_l^i`
      (:math:`N_s^i`);
    - lands are runs of *one* event class ("FG features of the same event type should be
      closer"): two adjacent event classes make two lands, and their border is no shore;
    - a shore is a land's first or last segment when a sea lies on that side; a border at
      the start or end of the video, or next to another event class, has a missing side
      and no term;
    - :math:`\overline{L}_{s'}` is the mean of the shore's land *without* the shore
      segment (the anchor is not part of its positive; a 1-segment land has none, hence
      no shore term) and :math:`\overline{S}_{s'}` the mean of the whole adjacent sea;
    - a video without lands (seas, shores) contributes 0 to that term: an all-background
      video has no land or shore term, an all-foreground video no sea or shore term.

    Args:
        features: ``(B, T, d)`` segment features (seed 002: the gated :math:`R_{AV}^G`).
        labels: ``(B, T)`` long segment classes.
        margin: the triplet margin :math:`\alpha \ge 0` of eq 10.
        background: index of the background class (default 28).

    Returns:
        ``{"land": ..., "sea": ..., "shore": ...}``, scalars with gradients.
    """
    if features.dim() != 3 or labels.shape != features.shape[:2]:
        raise PipelineError(
            f"Land-Shore-Sea loss: expected features (B, T, d) and labels (B, T), found "
            f"{tuple(features.shape)} and {tuple(labels.shape)}"
        )
    rows, batch = labels.tolist(), features.shape[0]
    terms = {}
    for name, sea in (("land", False), ("sea", True)):
        weights, videos = _half_terms(rows, background, sea)
        terms[name] = _per_video_mean(_norms(features, weights, videos), videos, batch)
    to_land, to_sea, videos = _shore_terms(rows, background)
    gaps = _norms(features, to_land, videos) - _norms(features, to_sea, videos)  # (n,)
    terms["shore"] = _per_video_mean(torch.relu(gaps + margin), videos, batch)
    return terms
