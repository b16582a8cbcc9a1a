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
(:class:`AVVPOutput`); the weak loss with label smoothing is :func:`han_loss`.

Where our code differs from the reference code, on purpose: its encoder feeds the original
inputs to every layer (only the last of several layers counts); here layers are stacked.
With the paper's one layer the two agree.

Against the reference code (YapengTian/AVVP-ECCV20, one batch of ``main_avvp.train``,
dropout 0; ``tests/golden/test_han.py`` on ``tests/golden/fixtures/han.npz``): the segment,
video and modality probabilities are equal to float64 rounding (4e-16), the loss and
the gradients to float32 rounding (:func:`pipeline.losses.han_loss` computes in float32). The AVVP
metrics of :mod:`pipeline.avvp.metrics` equal its ``segment_level`` and ``event_level``
on 60 videos, 20 of them edge cases (``avvp_metrics.npz``, to 1e-15).
"""

import torch
from torch import nn

from pipeline.errors import PipelineError
from pipeline.losses import AVVPOutput
from pipeline.models.base import AVVPModel, Hyper, register
from pipeline.models.checks import check_int, check_probability


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


@register("han")
class HAN(AVVPModel):
    """Hybrid attention network with attentive MMIL pooling (see the module docstring).

    An :class:`~pipeline.models.base.AVVPModel` registered as ``han``: its
    :attr:`hyperparameters` are the keys of ``params.yaml: avvp.model`` besides ``name``,
    checked and generated from this declaration (:mod:`pipeline.config.schema`).

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
    ) -> AVVPOutput:
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
        return AVVPOutput(
            probs=torch.sigmoid(self.classifier(h)),
            time_logits=self.time_attention(h),
            modality_logits=self.modality_attention(h),
        )
