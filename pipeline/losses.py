"""Weak labels, the MIL video predictions and the training losses (seed 004 §3-§4.3).

``scores`` are a model's raw segment-level class scores ``(B, T, C)`` (seed 004 §4.1 eq 5).
Weakly-supervised training (WSEL) matches a video-level prediction to the presence labels
of §3: the AVE baseline's max pooling of eq 6 with :func:`mil_loss`, or the mean pooling of
DPNet and EDRNet (the default of :class:`pipeline.models.base.AVELModel`) with
:func:`mean_pooled_loss`. Supervised training (SEL) uses :func:`sel_loss` on the segment
labels, and EDRNet adds :func:`land_shore_sea_loss` (seed 002 eqs 8-10). The weak chain of
seed 004 adds the auxiliary objective of §4.3 (:func:`union_labels`,
:func:`auxiliary_loss`) in Step 1 and the label-refinement loss of eqs 12-13
(:func:`label_refinement_loss`) in Step 3; both take the base model's own weak loss
:math:`g` (:data:`VideoLoss`).

The AVVP task (seed 004 App. A.1) trains on LLP's multi-label weak labels: an AVVP model's
:class:`AVVPOutput` is pooled over time and modality by Tian et al.'s attentive MMIL
pooling (:func:`mmil_pool`) and trained with their guided weak loss (:func:`han_loss`);
the refinement of :mod:`pipeline.avvp.refine` pools over a window's segments.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pipeline.data.store import BACKGROUND
from pipeline.errors import PipelineError
from pipeline.refinement.slices import window_index


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


def video_label_totals(
    scores: torch.Tensor, video_labels: torch.Tensor, owner: str = ""
) -> torch.Tensor:
    """``(B, 1)``: the number of classes of each video, after checking the labels.

    Args:
        scores: ``(B, T, C)`` segment scores.
        video_labels: ``(B, C)`` presence labels in {0, 1}.
        owner: the model named in the messages (default ``""``: none).

    Raises:
        PipelineError: ``video_labels`` is not ``(B, C)``, or a video has no class.
    """
    name = f"{owner} video_labels".strip()
    if video_labels.shape != (scores.shape[0], scores.shape[2]):
        raise PipelineError(
            f"{name}: expected shape {(scores.shape[0], scores.shape[2])}, "
            f"found {tuple(video_labels.shape)}"
        )
    totals = video_labels.sum(dim=-1, keepdim=True)  # (B, 1)
    if (totals <= 0).any():
        raise PipelineError(f"{name}: expected at least one class per video")
    return totals


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
    totals = video_label_totals(scores, video_labels)  # (B, 1)
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


VideoLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""A base model's weak loss ``g``: raw scores ``(B, T, C)`` and labels ``(B, C)`` → scalar,
pooling over time itself and averaging over the batch (e.g. a model's ``wsel_loss``)."""


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
    AVE baseline, :func:`pipeline.losses.mil_loss` on a slice is exactly the eq 12 softmax
    of
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
    index = torch.as_tensor(window_index(starts, window), device=scores.device)  # (T1, N)
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


# ---------------------------------------------------------------------------------------
# AVVP: the attentive MMIL pooling and the guided weak loss (Tian et al., ECCV 2020).


@dataclass
class AVVPOutput:
    """What an AVVP model (:class:`pipeline.models.base.AVVPModel`) computes for a batch.

    Args:
        probs: ``(B, T, 2, C)`` segment probabilities :math:`P` (audio, visual).
        time_logits: ``(B, T, 2, C)`` logits of the temporal attention :math:`A`.
        modality_logits: ``(B, T, 2, C)`` logits of the modality attention :math:`M`.
    """

    probs: torch.Tensor
    time_logits: torch.Tensor
    modality_logits: torch.Tensor


@dataclass
class Pooled:
    """Video-level probabilities of the MMIL pooling: ``video``, ``audio``, ``visual`` (B, C)."""

    video: torch.Tensor
    audio: torch.Tensor
    visual: torch.Tensor


def mmil_weights(
    output: AVVPOutput, segments: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The temporal and modality attention of the MMIL pooling, each ``(B, T, 2, C)``.

    The temporal weights sum to 1 over the (pooled) segments, the modality weights to 1
    over the two modalities.

    Args:
        output: the model's :class:`AVVPOutput`.
        segments: ``(T,)`` bool mask of the segments pooled over (a window of seed 004
            eq 12); :obj:`None` pools over all. (default: :obj:`None`)
    """
    time_logits = output.time_logits
    if segments is not None:
        time_logits = time_logits.masked_fill(~segments[None, :, None, None], float("-inf"))
    return torch.softmax(time_logits, dim=1), torch.softmax(output.modality_logits, dim=2)


def mmil_pool(output: AVVPOutput, segments: torch.Tensor | None = None) -> Pooled:
    r"""Attentive MMIL pooling over time and modality (Tian et al. 2020, §4.2).

    Args:
        output: the model's :class:`AVVPOutput`.
        segments: ``(T,)`` bool mask of the pooled segments (:func:`mmil_weights`).
            (default: :obj:`None`, all)

    Returns:
        :math:`\bar p`, :math:`\bar p^a`, :math:`\bar p^v`, each ``(B, C)``.
    """
    time_att, modality_att = mmil_weights(output, segments)  # (B, T, 2, C) each
    temporal = time_att * output.probs  # (B, T, 2, C)
    return Pooled(
        video=(temporal * modality_att).sum(dim=(1, 2)),
        audio=temporal[:, :, 0].sum(dim=1),
        visual=temporal[:, :, 1].sum(dim=1),
    )


def smooth(labels: torch.Tensor, epsilon: float) -> torch.Tensor:
    r"""Label smoothing towards 1/2: :math:`(1 - \epsilon) y + \epsilon / 2`."""
    return (1 - epsilon) * labels + epsilon / 2


def _bce(probs: torch.Tensor, targets: torch.Tensor, clamp: float) -> torch.Tensor:
    return F.binary_cross_entropy(probs.float().clamp(clamp, 1 - clamp), targets.float())


def han_loss(
    pooled: Pooled,
    labels: torch.Tensor,
    audio_smoothing: float = 0.0,
    visual_smoothing: float = 0.1,
    clamp: float = 1e-7,
    audio_labels: torch.Tensor | None = None,
    visual_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""HAN's weak loss with guided modality terms (Tian et al. 2020, §4.2-4.3).

    :math:`\mathrm{BCE}(\bar p, y) + \mathrm{BCE}(\bar p^a, \tilde y^a) +
    \mathrm{BCE}(\bar p^v, \tilde y^v)`, where the modality targets are the video labels
    smoothed towards 1/2 (:func:`smooth`): a video-level label need not be audible and
    visible, and Tian et al.'s code smooths the visual target (0.1) and not the audio (0).
    Probabilities are clamped to ``[clamp, 1 - clamp]`` as there.

    Args:
        pooled: the MMIL pooling of the batch (:func:`mmil_pool`).
        labels: ``(B, C)`` 0/1 video-level labels.
        audio_smoothing: :math:`\epsilon` of the audio target. (default: 0.0)
        visual_smoothing: :math:`\epsilon` of the visual target. (default: 0.1)
        clamp: probability clamp. (default: 1e-7)
        audio_labels: ``(B, C)`` modality-specific audio targets that replace the smoothed
            video labels (refined labels, :mod:`pipeline.avvp.refine`). (default: None)
        visual_labels: the same for the visual target. (default: None)
    """
    audio = smooth(labels, audio_smoothing) if audio_labels is None else audio_labels
    visual = smooth(labels, visual_smoothing) if visual_labels is None else visual_labels
    return (
        _bce(pooled.video, labels, clamp)
        + _bce(pooled.audio, audio, clamp)
        + _bce(pooled.visual, visual, clamp)
    )
