"""Weak labels, the MIL video prediction and the training losses (seed 004 §3, §4.1).

``scores`` are a model's raw segment-level class scores ``(B, T, C)`` (seed 004 §4.1 eq 5).
Weakly-supervised training (WSEL) matches the video-level prediction of eq 6 to the
presence labels of §3 with :func:`mil_loss`; supervised training (SEL) uses
:func:`sel_loss` on the segment labels.
"""

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
