r"""HAN, the hybrid attention network with attentive MMIL pooling (Tian et al., ECCV 2020).

The AVVP base model of seed 004 Appendix A.1 (Table 6). For a video of :math:`T` segments:

1. **Inputs.** Audio :math:`f^a_t` (VGGish), 2D frame features (ResNet-152, ``k`` frames
   per segment) and a 3D snippet feature :math:`f^{st}_t` (R(2+1)D-18) per segment.
2. **2D + 3D visual fusion.** The frames are projected and averaged over each segment,
   concatenated with the projected snippet and fused:
   :math:`f^v_t = W_f [\frac{1}{k}\sum_j W_v f^{2d}_{t,j}; W_{st} f^{st}_t]`;
   :math:`f^a_t = W_a f^a_t`.
3. **Hybrid attention** (one HAN layer per ``layers``). For the query modality :math:`x`
   and the other :math:`y`:
   :math:`\hat x = \mathrm{LN}(x + \mathrm{SA}(x, x, x) + \mathrm{CMA}(x, y, y))`, then
   :math:`x' = \mathrm{LN}(\hat x + \mathrm{FFN}(\hat x))`, with multi-head attention
   ``SA`` (self, within the modality) and ``CMA`` (cross-modal), dropout after each.
   Tian et al. use the same layer weights for the audio and the visual query
   (``share_layers``).
4. **Attentive MMIL pooling.** With :math:`h_{t,m}` (:math:`m` = audio, visual):
   segment probabilities :math:`P_{t,m} = \sigma(W_p h_{t,m})` ``(T, 2, C)``, temporal
   attention :math:`A_{t,m} = \mathrm{softmax}_t(W_t h_{t,m})` and modality attention
   :math:`M_{t,m} = \mathrm{softmax}_m(W_m h_{t,m})`, per class. The video-level
   probability is :math:`\bar p = \sum_t \sum_m M_{t,m} A_{t,m} P_{t,m}` and the
   modality-level ones :math:`\bar p^m = \sum_t A_{t,m} P_{t,m}`
   (:func:`mmil_pool`). Pooling over a subset of segments (a refinement window, seed 004
   eq 12) renormalises the temporal attention over that subset.

:class:`HAN` returns the segment probabilities and both attention logits
(:class:`HANOutput`); the weak loss with label smoothing is :func:`han_loss`.

Where our code differs from the reference code, on purpose: its encoder feeds the original
inputs to every layer (only the last of several layers counts); here layers are stacked.
With the paper's one layer the two agree.

Against the reference code (YapengTian/AVVP-ECCV20, one batch of ``main_avvp.train``,
dropout 0; ``tests/golden/test_han.py`` on ``tests/golden/fixtures/han.npz``): the segment,
video and modality probabilities are equal to float64 rounding (4e-16), the loss and
the gradients to float32 rounding (:func:`han_loss` computes in float32). The AVVP
metrics of :mod:`pipeline.avvp.metrics` equal its ``segment_level`` and ``event_level``
on 60 videos, 20 of them edge cases (``avvp_metrics.npz``, to 1e-15).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import PipelineError
from pipeline.models.base import Hyper
from pipeline.models.checks import check_int, check_probability

#: Constructor arguments that come from the data, not from ``params.yaml: avvp.model``.
DATA_DIMS = ("audio_dim", "frame_dim", "snippet_dim", "n_classes")


@dataclass
class HANOutput:
    """What :class:`HAN` computes for a batch.

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
    output: HANOutput, segments: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The temporal and modality attention of the MMIL pooling, each ``(B, T, 2, C)``.

    The temporal weights sum to 1 over the (pooled) segments, the modality weights to 1
    over the two modalities.

    Args:
        output: the model's :class:`HANOutput`.
        segments: ``(T,)`` bool mask of the segments pooled over (a window of seed 004
            eq 12); :obj:`None` pools over all. (default: :obj:`None`)
    """
    time_logits = output.time_logits
    if segments is not None:
        time_logits = time_logits.masked_fill(~segments[None, :, None, None], float("-inf"))
    return torch.softmax(time_logits, dim=1), torch.softmax(output.modality_logits, dim=2)


def mmil_pool(output: HANOutput, segments: torch.Tensor | None = None) -> Pooled:
    r"""Attentive MMIL pooling over time and modality (Tian et al. 2020, §4.2).

    Args:
        output: the model's :class:`HANOutput`.
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


class HANLayer(nn.Module):
    """Self-attention within a modality plus cross-modal attention, then a feed-forward block.

    Args:
        hidden: feature size ``d``.
        heads: attention heads.
        feedforward: hidden size of the feed-forward block.
        dropout: dropout after each attention and in the feed-forward block.
    """

    def __init__(self, hidden: int, heads: int, feedforward: int, dropout: float) -> None:
        super().__init__()
        self.self_attention = nn.MultiheadAttention(hidden, heads, dropout, batch_first=True)
        self.cross_attention = nn.MultiheadAttention(hidden, heads, dropout, batch_first=True)
        self.feedforward = nn.Sequential(
            nn.Linear(hidden, feedforward),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(feedforward, hidden),
        )
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.drop_self, self.drop_cross, self.drop_ff = (nn.Dropout(dropout) for _ in range(3))

    def forward(self, query: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """``(B, T, d)`` query modality attended by itself and by ``other`` ``(B, T, d)``."""
        own = self.self_attention(query, query, query, need_weights=False)[0]
        cross = self.cross_attention(query, other, other, need_weights=False)[0]
        x = self.norm1(query + self.drop_self(own) + self.drop_cross(cross))
        return self.norm2(x + self.drop_ff(self.feedforward(x)))


class HAN(nn.Module):
    """Hybrid attention network with attentive MMIL pooling (see the module docstring).

    HAN is no :class:`~pipeline.models.base.AVELModel` (its inputs are three feature streams
    and its outputs per-modality probabilities, not AVEL's ``(audio, visual) -> (B, T, C)``
    scores), so it is not in the AVEL registry; it declares its hyperparameters the way
    the contract does (:attr:`hyperparameters`, :class:`~pipeline.models.base.Hyper`), and
    ``params.yaml: avvp.model`` is checked against them (``tests/avvp/test_han.py``).

    Args:
        audio_dim: audio feature size (default 128, VGGish).
        frame_dim: 2D frame feature size (default 2048, ResNet-152).
        snippet_dim: 3D snippet feature size (default 512, R(2+1)D-18).
        n_classes: event classes ``C`` (default 25).
        hidden: feature size ``d`` of every projection and attention (default 512).
        heads: attention heads (default 1).
        feedforward: hidden size of the feed-forward block (default 512).
        dropout: dropout of the HAN layers (default 0.1).
        layers: stacked HAN layers (default 1).
        share_layers: one layer's weights for both query modalities, as Tian et al.'s code
            (default :obj:`True`).
    """

    hyperparameters = (
        Hyper("hidden", int, "feature size d of the projections and attention", "features", ge=1),
        Hyper("heads", int, "attention heads (dividing hidden)", "heads", ge=1),
        Hyper("feedforward", int, "hidden size of the feed-forward block", "features", ge=1),
        Hyper("dropout", float, "dropout of the HAN layers", ge=0, lt=1),
        Hyper("layers", int, "stacked HAN layers", "layers", ge=1),
        Hyper("share_layers", bool, "one layer's weights for the audio and the visual query"),
    )

    def __init__(
        self,
        audio_dim: int = 128,
        frame_dim: int = 2048,
        snippet_dim: int = 512,
        n_classes: int = 25,
        hidden: int = 512,
        heads: int = 1,
        feedforward: int = 512,
        dropout: float = 0.1,
        layers: int = 1,
        share_layers: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("hidden", hidden), ("heads", heads), ("feedforward", feedforward)):
            check_int("han", name, value)
        check_int("han", "layers", layers)
        check_probability("han", "dropout", dropout)
        if hidden % heads:
            raise PipelineError(f"han hidden: expected a multiple of heads {heads}, found {hidden}")
        self.audio_proj = nn.Linear(audio_dim, hidden)
        self.frame_proj = nn.Linear(frame_dim, hidden)
        self.snippet_proj = nn.Linear(snippet_dim, hidden)
        self.fusion = nn.Linear(2 * hidden, hidden)

        def stack() -> nn.ModuleList:
            return nn.ModuleList(
                HANLayer(hidden, heads, feedforward, dropout) for _ in range(layers)
            )

        self.audio_layers = stack()
        self.visual_layers = self.audio_layers if share_layers else stack()
        self.classifier = nn.Linear(hidden, n_classes)
        self.time_attention = nn.Linear(hidden, n_classes)
        self.modality_attention = nn.Linear(hidden, n_classes)

    def visual_features(self, frames: torch.Tensor, snippets: torch.Tensor) -> torch.Tensor:
        """``(B, T, d)`` fused 2D + 3D visual features.

        Args:
            frames: ``(B, T * k, F)`` frame features, ``k`` consecutive frames per segment
                (``k`` = 1 for features averaged beforehand: the projection is linear, so
                averaging before or after it is the same).
            snippets: ``(B, T, S)`` snippet features.
        """
        B, T = snippets.shape[:2]
        frames = self.frame_proj(frames).view(B, T, -1, self.fusion.out_features).mean(dim=2)
        return self.fusion(torch.cat([frames, self.snippet_proj(snippets)], dim=-1))  # (B, T, d)

    def forward(
        self, audio: torch.Tensor, frames: torch.Tensor, snippets: torch.Tensor
    ) -> HANOutput:
        """Segment probabilities and attention logits of a batch.

        Args:
            audio: ``(B, T, A)`` audio features.
            frames: ``(B, T * k, F)`` frame features.
            snippets: ``(B, T, S)`` snippet features.
        """
        a = self.audio_proj(audio)  # (B, T, d)
        v = self.visual_features(frames, snippets)  # (B, T, d)
        for audio_layer, visual_layer in zip(self.audio_layers, self.visual_layers, strict=True):
            a, v = audio_layer(a, v), visual_layer(v, a)
        h = torch.stack([a, v], dim=2)  # (B, T, 2, d)
        return HANOutput(
            probs=torch.sigmoid(self.classifier(h)),
            time_logits=self.time_attention(h),
            modality_logits=self.modality_attention(h),
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
