r"""The Dual Perspective Network (DPNet) of seed 001 §3.2 and the variants of its Table 3.

A video is processed from two perspectives (seed 001 §3.2): the *graph* perspective, an
:class:`~pipeline.models.rgct.RGCT` layer on the video graph of eqs 1-4 (short-term
temporal and cross-modal context), and the *sequential stream* perspective, one
:class:`TemporalConv` per modality (eqs 5-6, long-term context). A :class:`DPBlock` runs
both once (eq 7) and DPNet stacks ``blocks`` of them (eq 8) between the input
projections and the gated classifier (eqs 9-11). The layers are in
:mod:`pipeline.models.dpnet_layers`; this module builds the networks from them.

Every network of Table 3 shares the input projections, the gating of eqs 9-10 ("for all
networks, the gating mechanism described in Equations 9 and 10 performs the feature
fusion") and the classifier of eq 11, and takes the constructor arguments of
:class:`DPNet`; only the backbone differs:

============================  ===================  ======================================
registry name                 Table 3 row          backbone (``B = blocks``)
============================  ===================  ======================================
``rgat``                      1. RGAT only         B RGATConv + Swish, size-matched heads
``rgct``                      2. RGCT only         depth-matched stack of RGCT
``tcn``                       3. TCN only          depth-matched stack of TCN pairs
``tcn_rgct``                  4. TCN -> RGCT       B TCN pairs, then B RGCT
``rgct_tcn``                  5. RGCT -> TCN       B RGCT, then B TCN pairs
``dpnet_pp``                  6. w/ PPBlock        B :class:`PPBlock`
``dpnet_graph_second``        7. w/ graph second   B :class:`DPBlock` (TCN, then RGCT)
``dpnet``                     8. w/ graph first    B :class:`DPBlock` (RGCT, then TCN)
============================  ===================  ======================================

"Similarly sized networks" (seed 001 §4.1): rows 4-8 hold exactly DPNet's layers (B RGCT
layers and B TCN pairs), so their sizes are equal. A single-perspective network (rows
1-3) repeats its unit until its backbone has about the size of DPNet's,
:math:`\max(1, \mathrm{round}(B \cdot |DPBlock| / |unit|))` units (:func:`matched_count`):
RGCT and TCN stacks by depth (at ``hidden`` 768, ``kernel`` 3, ``B`` = 4: 5 RGCT layers,
17 TCN pairs), RGAT by attention heads in each of its B layers (4 heads), because a deep
RGAT stack, having no self term, shrinks its activations by about 0.3 per layer at
initialisation (1e-9 after 17 layers, untrainable).
"""

from functools import partial

import torch
from torch import nn

from pipeline.errors import PipelineError
from pipeline.models.base import AVELModel, Hyper, register
from pipeline.models.checks import check_int, check_probability
from pipeline.models.dpnet_layers import (
    ORDERS,
    DPBlock,
    Gate,
    Graph,
    PPBlock,
    RGATStage,
    RGCTStage,
    Streams,
    StreamTCN,
    check_order,
    he_init,
    matched_count,
)


class InputNorm(nn.Module):
    r"""Layer normalisation scaled to unit Euclidean norm: :math:`\mathrm{LN}(x) / \sqrt{D}`.

    Not in seed 001 (see :class:`PerspectiveNetwork`). ``LN`` has its learnable affine
    map, so the scale is its initial one.

    Args:
        dim: feature size :math:`D`.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.scale = dim**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., D)`` features to ``(..., D)`` of zero mean and unit norm per row."""
        return self.norm(x) * self.scale


class PerspectiveNetwork(AVELModel):
    r"""Input projections, a backbone of perspective stages, gating and classifier.

    The shared frame of DPNet and its Table 3 variants (seed 001 §3.2). The visual maps
    :math:`f^V_t` are globally average-pooled to :math:`\hat{f}^V_t \in
    \mathbb{R}^{d_v}` when given as ``(B, T, H, W, d_v)``. The paper maps audio to the
    visual width with an FC :math:`W_a \in \mathbb{R}^{d_a \times d_v}` but sets "the
    feature size to 768 for all transformations", wider than :math:`d_v = 512`; here both
    modalities are mapped to ``hidden`` by an FC of their own (:math:`W_a` and a
    :math:`W_v` that the paper does not need when :math:`d = d_v`). The backbone's output
    streams are fused by :class:`Gate` (eqs 9-10) and classified (eq 11, without its
    softmax, which belongs to the loss).

    **Input normalisation.** Seed 001 says nothing of what DPNet does to its inputs
    (§4.1 names only the released VGGish and VGG-19 features). Those features are not of
    unit scale: VGG-19 pool5 activations reach the tens and hundreds, and the pooled map
    of a sound source is dominated by a few large channels. Fed raw, the He-initialised
    ``2B`` Swish layers amplify that scale: the first-epoch loss is in the tens and the
    model trains at a fraction of what a linear probe reaches (issue 28). Each modality
    is therefore layer-normalised over its feature axis before its FC, the normalisation
    the compared official models use on their streams (PSP's shared ``LayerNorm`` after
    each fusion, CMRAN's post-norm Transformer layers, :mod:`pipeline.models.psp`,
    :mod:`pipeline.models.cmran`), and scaled to unit Euclidean norm (:class:`InputNorm`):
    :math:`W_a \mathrm{LN}(f^A_t) / \sqrt{d_a}` and :math:`W_v \mathrm{LN}(\hat{f}^V_t)
    / \sqrt{d_v}`. The scale matters: the He-initialised stack is not scale-stable, and
    at unit variance per feature (``LN`` alone) its activations grow by about 1.35 per
    block to a first loss of 13.5, and training stalls near chance on the synthetic store
    (train loss 3.2 after 8 epochs, against 0.47 without normalisation); at unit norm it
    trains as on the raw synthetic features, whose RMS is about 0.2 (train loss 2.5 after
    2 epochs; issue 28, measured with ``hidden`` 128). It makes the output invariant to a
    positive scale of either input (``tests/models/test_dpnet.py::
    test_dpnet_is_invariant_to_the_input_scale``), and DPNet trains on pool5-scale inputs
    (``test_dpnet_trains_at_vgg_pool5_scale``).

    Subclasses define the backbone in :meth:`stages`. ``uses_graph`` says whether the
    backbone has a graph layer, i.e. whether a linked graph (eqs 17-21) changes anything.
    WSEL pools the segment predictions by their mean and fits them with the cross-entropy
    (seed 001 §3.2): the defaults of :class:`~pipeline.models.base.AVELModel`.

    Args:
        audio_dim: audio feature size :math:`d_a` (default 128, VGGish).
        visual_dim: visual feature size :math:`d_v` (default 512, VGG-19 pool5).
        n_classes: classes :math:`C` including background (default 29).
        hidden: feature size :math:`d` of every transformation (default 768).
        blocks: number of blocks :math:`B` (default 4).
        kernel: TCN kernel size :math:`k >= 2` (default 3).
        dropout: RGCT dropout probability (default 0.2).
        order: ``"graph_first"`` or ``"graph_second"``, the order within a DPBlock;
            only :class:`DPNet` reads it, the other networks accept it so that every
            registry name takes the same ``model`` params (default ``"graph_first"``).
    """

    hyperparameters = (
        Hyper("hidden", int, "feature size d of every transformation", ge=1),
        Hyper("blocks", int, "number of blocks B (seed 001 eq 8; supplement Fig. 2)", ge=1),
        Hyper("kernel", int, "TCN kernel size k (seed 001 eqs 5-6)", "segments", ge=2),
        Hyper("order", str, "DPNet's order in a block; the others ignore it", choices=ORDERS),
        Hyper("dropout", float, "RGCT dropout (RGAT: attention dropout)", ge=0, lt=1),
    )
    family = "dpnet family"
    needs_maps = False
    uses_graph = True

    def __init__(
        self,
        audio_dim: int = 128,
        visual_dim: int = 512,
        n_classes: int = 29,
        hidden: int = 768,
        blocks: int = 4,
        kernel: int = 3,
        dropout: float = 0.2,
        order: str = "graph_first",
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        sizes = {
            "audio_dim": audio_dim,
            "visual_dim": visual_dim,
            "n_classes": n_classes,
            "hidden": hidden,
            "blocks": blocks,
        }
        for name, value in sizes.items():
            check_int(owner, name, value)
        check_int(owner, "kernel", kernel, minimum=2)
        check_probability(owner, "dropout", dropout)
        check_order(owner, order)
        self.audio_dim = audio_dim
        self.visual_dim = visual_dim
        self.audio_norm = InputNorm(audio_dim)  # not in the paper: see the docstring
        self.visual_norm = InputNorm(visual_dim)
        self.audio_proj = nn.Linear(audio_dim, hidden)  # W_a
        self.visual_proj = nn.Linear(visual_dim, hidden)  # W_v
        self.backbone = nn.ModuleList(self.stages(hidden, blocks, kernel, dropout, order))
        self.gate = Gate(hidden)  # W_G
        self.classifier = nn.Linear(hidden, n_classes)  # W_seg
        self.apply(he_init)

    def stages(
        self, hidden: int, blocks: int, kernel: int, dropout: float, order: str
    ) -> list[nn.Module]:
        """The backbone: modules mapping ``(audio, visual, graph)`` to ``(audio, visual)``."""
        raise NotImplementedError

    def _pooled(self, audio: torch.Tensor, visual: torch.Tensor) -> Streams:
        """Check the input shapes; return audio and pooled ``(B, T, d_v)`` visual features."""
        if audio.dim() != 3 or audio.shape[-1] != self.audio_dim:
            raise PipelineError(
                f"audio: expected shape (B, T, {self.audio_dim}), found {tuple(audio.shape)}"
            )
        if visual.dim() not in (3, 5) or visual.shape[-1] != self.visual_dim:
            raise PipelineError(
                f"visual: expected shape (B, T, {self.visual_dim}) or "
                f"(B, T, H, W, {self.visual_dim}), found {tuple(visual.shape)}"
            )
        if visual.shape[:2] != audio.shape[:2]:
            raise PipelineError(
                f"audio and visual: expected the same (B, T), found {tuple(audio.shape[:2])} "
                f"and {tuple(visual.shape[:2])}"
            )
        pooled = visual.mean(dim=(2, 3)) if visual.dim() == 5 else visual  # (B, T, d_v)
        return audio, pooled

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, graph: Graph | None = None
    ) -> torch.Tensor:
        """Raw segment-level class scores (seed 001 eqs 8-11 before the softmax).

        Args:
            audio: ``(B, T, audio_dim)`` audio features.
            visual: ``(B, T, visual_dim)`` pooled features or ``(B, T, H, W, visual_dim)``
                maps.
            graph: ``(edge_index, edge_type)`` over the ``B * 2T`` segment nodes, e.g. the
                linked graph of originals and replicas; ``None`` (default) uses each
                video's own graph of eqs 1-4 through the dense RGCT path.

        Returns:
            ``(B, T, n_classes)`` raw (pre-softmax) scores.
        """
        audio, visual = self._pooled(audio, visual)
        audio = self.audio_proj(self.audio_norm(audio))  # (B, T, d): W_a LN(f^A) / sqrt(d_a)
        visual = self.visual_proj(self.visual_norm(visual))  # (B, T, d): W_v LN(f^V) / ...
        for stage in self.backbone:
            audio, visual = stage(audio, visual, graph)  # (B, T, d) each, eq 8
        return self.classifier(self.gate(audio, visual))  # (B, T, n_classes), eqs 9-11


@register("dpnet")
class DPNet(PerspectiveNetwork):
    r"""Dual Perspective Network (seed 001 §3.2, eqs 5-11; Table 3 rows 7-8).

    .. math::
        \mathcal{F}^{DPNet} = \mathcal{F}^{DPBlock}_1 \to \mathcal{F}^{DPBlock}_2 \dots
        \to \mathcal{F}^{DPBlock}_B

    ``blocks`` :class:`DPBlock` in the given ``order``, between the input projections and
    the gated classifier of :class:`PerspectiveNetwork` (same arguments).
    """

    def stages(
        self, hidden: int, blocks: int, kernel: int, dropout: float, order: str
    ) -> list[nn.Module]:
        """``blocks`` DPBlocks (eq 8)."""
        return [DPBlock(hidden, kernel, dropout, order) for _ in range(blocks)]


@register("dpnet_graph_second")
class DPNetGraphSecond(DPNet):
    """DPNet with graph-second DPBlocks (seed 001 Table 3 row 7); ignores ``order``."""

    def stages(
        self, hidden: int, blocks: int, kernel: int, dropout: float, order: str
    ) -> list[nn.Module]:
        """``blocks`` DPBlocks that run the TCN pair, then the RGCT."""
        return super().stages(hidden, blocks, kernel, dropout, "graph_second")


@register("dpnet_pp")
class DPNetPP(PerspectiveNetwork):
    """DPNet with Parallel Perspective Blocks (seed 001 Table 3 row 6)."""

    def stages(
        self, hidden: int, blocks: int, kernel: int, dropout: float, order: str
    ) -> list[nn.Module]:
        """``blocks`` PPBlocks."""
        return [PPBlock(hidden, kernel, dropout) for _ in range(blocks)]


@register("tcn_rgct")
class TCNThenRGCT(PerspectiveNetwork):
    """Serial TCN -> RGCT network (seed 001 Table 3 row 4).

    The stream perspective once, then the graph perspective once: ``blocks`` TCN pairs,
    then ``blocks`` RGCT layers. These are DPNet's layers without the alternation
    ("cyclic feature refinement") of graph-second DPBlocks.
    """

    def stages(
        self, hidden: int, blocks: int, kernel: int, dropout: float, order: str
    ) -> list[nn.Module]:
        """``blocks`` TCN pairs, then ``blocks`` RGCT layers."""
        streams = [StreamTCN(hidden, kernel) for _ in range(blocks)]
        return streams + [RGCTStage(hidden, dropout) for _ in range(blocks)]


@register("rgct_tcn")
class RGCTThenTCN(PerspectiveNetwork):
    """Serial RGCT -> TCN network (seed 001 Table 3 row 5).

    ``blocks`` RGCT layers, then ``blocks`` TCN pairs: DPNet's layers without the
    alternation of graph-first DPBlocks.
    """

    def stages(
        self, hidden: int, blocks: int, kernel: int, dropout: float, order: str
    ) -> list[nn.Module]:
        """``blocks`` RGCT layers, then ``blocks`` TCN pairs."""
        graphs = [RGCTStage(hidden, dropout) for _ in range(blocks)]
        return graphs + [StreamTCN(hidden, kernel) for _ in range(blocks)]


class MatchedStack(PerspectiveNetwork):
    """A single-perspective network: a stack of one layer type, sized like DPNet.

    The depth is :func:`matched_count` of ``blocks`` DPBlocks; subclasses define the
    layer in :meth:`layer`.
    """

    def layer(self, hidden: int, kernel: int, dropout: float) -> nn.Module:
        """One layer of the stack."""
        raise NotImplementedError

    def stages(
        self, hidden: int, blocks: int, kernel: int, dropout: float, order: str
    ) -> list[nn.Module]:
        """Layers, as many as make the size of ``blocks`` DPBlocks."""
        make = partial(self.layer, hidden, kernel, dropout)
        depth = matched_count(blocks, partial(DPBlock, hidden, kernel, dropout), make)
        return [make() for _ in range(depth)]


@register("rgct")
class RGCTOnly(MatchedStack):
    """RGCT-only network (seed 001 Table 3 row 2): a depth-matched stack of RGCT layers."""

    def layer(self, hidden: int, kernel: int, dropout: float) -> nn.Module:
        """One :class:`RGCTStage`."""
        return RGCTStage(hidden, dropout)


@register("tcn")
class TCNOnly(MatchedStack):
    """TCN-only network (seed 001 Table 3 row 3): a depth-matched stack of TCN pairs.

    No graph perspective, so ``graph`` and ``dropout`` (an RGCT setting) are unused;
    Table 3 has no "+ Link" result for it either.
    """

    uses_graph = False

    def layer(self, hidden: int, kernel: int, dropout: float) -> nn.Module:
        """One :class:`StreamTCN` pair."""
        return StreamTCN(hidden, kernel)


@register("rgat")
class RGATOnly(PerspectiveNetwork):
    """RGAT-only network (seed 001 Table 3 row 1): ``blocks`` size-matched RGAT layers.

    Each :class:`RGATStage` has as many heads as make its size that of a DPBlock.
    ``dropout`` is RGATConv's attention dropout.
    """

    def stages(
        self, hidden: int, blocks: int, kernel: int, dropout: float, order: str
    ) -> list[nn.Module]:
        """``blocks`` RGAT layers with DPBlock-sized heads."""
        block = partial(DPBlock, hidden, kernel, dropout)
        heads = matched_count(1, block, partial(RGATStage, hidden, dropout))
        return [RGATStage(hidden, dropout, heads) for _ in range(blocks)]
