r"""The layers of DPNet and its Table 3 variants (seed 001 §3.2-§3.3, eqs 5-10).

The sequential stream perspective (:class:`TemporalConv`, :class:`StreamTCN`, eqs 5-6),
the graph perspective (:class:`RGCTStage` on :class:`~pipeline.models.rgct.RGCT`, and
:class:`RGATStage` for Table 3 row 1), the blocks that combine them (:class:`DPBlock`,
eq 7; :class:`PPBlock`), the gated fusion of eqs 9-10 (:class:`Gate`), the initialisation
(:func:`he_init`) and the size matching of Table 3 (:func:`matched_count`). The networks
built from them are in :mod:`pipeline.models.dpnet`.
"""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import RGATConv
from torch_geometric.utils import scatter, softmax

from pipeline.errors import PipelineError
from pipeline.models.checks import check_int
from pipeline.models.graph import (
    RELATIONS,
    PairedBatch,
    nodes_to_streams,
    streams_to_nodes,
    video_graph,
)
from pipeline.models.rgct import RGCT

# (edge_index (2, E), edge_type (E,)), or the layout of linked originals and replicas
Graph = tuple[torch.Tensor, torch.Tensor] | PairedBatch


Streams = tuple[torch.Tensor, torch.Tensor]  # (audio (B, T, d), visual (B, T, d))


ORDERS = ("graph_first", "graph_second")


# Parameters that PyG's RGATConv allocates for its cardinality-preservation ``mod``
# options only; with ``mod=None`` they get no gradient (and ``l2`` is never initialised).
_RGAT_MOD_PARAMETERS = ("w", "l1", "b1", "l2", "b2")


def check_order(owner: str, order: str) -> None:
    """Raise :class:`PipelineError` unless ``order`` is one of :data:`ORDERS`."""
    if order not in ORDERS:
        raise PipelineError(f"{owner} order: expected one of {', '.join(ORDERS)}, found {order!r}")


class TemporalConv(nn.Module):
    r"""One TCN layer on one modality's stream (seed 001 eqs 5-6).

    .. math::
        \mathcal{F}^{TCN}_{b,m} = \mathrm{Swish}(\mathrm{TCN}(F^m_b, k; W^m_b))

    a 1-D convolution over time with kernel :math:`k` and zero padding that keeps the
    length :math:`T`. The padding is *centred* (``k // 2`` segments before,
    ``(k - 1) // 2`` after; an even kernel leans one segment to the past), so segment
    :math:`t` sees segments :math:`t - \lfloor k/2 \rfloor, \dots, t + \lfloor (k-1)/2
    \rfloor`. The TCN of seed 001's reference [2] (Bai et al.) is causal and dilated
    because it models sequences where the future is unknown; AVEL labels whole
    10-segment videos offline, where the future segments of an event are as informative
    as the past ones (an onset is recognised by what follows it). The paper names only
    the kernel size, so the layer is not dilated: with ``k = 3`` its four blocks already
    reach 9 of the 10 segments.

    Args:
        channels: feature size :math:`d` of input and output.
        kernel: kernel size :math:`k >= 2` (default 3).
    """

    def __init__(self, channels: int, kernel: int = 3) -> None:
        super().__init__()
        check_int("TemporalConv", "channels", channels)
        check_int("TemporalConv", "kernel", kernel, minimum=2)
        self.padding = (kernel // 2, (kernel - 1) // 2)  # (before, after) along time
        self.conv = nn.Conv1d(channels, channels, kernel)

    def forward(self, stream: torch.Tensor) -> torch.Tensor:
        """Map a ``(B, T, d)`` stream to a ``(B, T, d)`` stream (eq 5 or 6)."""
        padded = F.pad(stream.transpose(1, 2), self.padding)  # (B, d, T + k - 1)
        return F.silu(self.conv(padded)).transpose(1, 2)  # (B, T, d)


class StreamTCN(nn.Module):
    r"""The sequential stream perspective :math:`\mathcal{F}^{TCN}_b` (seed 001 eqs 5-6).

    Separate :class:`TemporalConv` layers for the audio and the visual stream ("their
    parallel execution"). The video graph is not used.

    Args:
        channels: feature size :math:`d`.
        kernel: kernel size :math:`k >= 2` (default 3).
    """

    def __init__(self, channels: int, kernel: int = 3) -> None:
        super().__init__()
        self.audio = TemporalConv(channels, kernel)
        self.visual = TemporalConv(channels, kernel)

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, graph: Graph | None = None
    ) -> Streams:
        """Map ``(B, T, d)`` audio and visual streams to new ``(B, T, d)`` streams."""
        return self.audio(audio), self.visual(visual)


class RGCTStage(nn.Module):
    r"""The graph perspective :math:`\mathcal{F}^{GNN}_b`: one RGCT layer (seed 001 §3.3).

    Without a graph it runs :meth:`RGCT.forward_dense` on the video graph of eqs 1-4 of
    each video, and with a :class:`~pipeline.models.graph.PairedBatch` on the linked graphs
    of originals and replicas (eqs 17-21), also densely; with explicit edges
    ``(edge_index, edge_type)`` it runs the message-passing layer on the segment nodes of
    the whole batch.

    Args:
        channels: feature size :math:`d`.
        dropout: dropout probability inside the RGCT (eq 16; default 0.0).
    """

    def __init__(self, channels: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.rgct = RGCT(channels, num_relations=len(RELATIONS), dropout=dropout)

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, graph: Graph | None = None
    ) -> Streams:
        """Update ``(B, T, d)`` audio and visual streams on their graph."""
        if graph is None:
            return self.rgct.forward_dense(audio, visual)
        if isinstance(graph, PairedBatch):
            return self.rgct.forward_dense(audio, visual, graph.pairs)
        nodes = self.rgct(streams_to_nodes(audio, visual), *graph)  # (B * 2T, d)
        return nodes_to_streams(nodes, audio.shape[1])


class RGATStage(nn.Module):
    r"""One RGAT layer (Busbridge et al., seed 001 ref. [3]) with Swish, for Table 3 row 1.

    PyG's :class:`~torch_geometric.nn.RGATConv` with its default attention
    (across-relation, additive) on the six relations of the video graph, ``heads``
    attention heads averaged (``concat=False``, so the width stays :math:`d`), then
    Swish. As in RGAT, a node is updated from its neighbours only (no self term). The
    parameters that RGATConv allocates for its ``mod`` options, unused here, are dropped.

    The layer is computed by :func:`rgat_conv`, which equals ``RGATConv.forward`` but
    projects each node once per relation instead of gathering a :math:`d \times Hd`
    weight matrix per edge (RGATConv's way: about 25 GB per layer at the paper's batch
    of 48 videos, :math:`d` = 768 and 4 heads).

    Args:
        channels: feature size :math:`d`.
        dropout: dropout probability on the attention coefficients (default 0.0).
        heads: number of attention heads (default 1).
    """

    def __init__(self, channels: int, dropout: float = 0.0, heads: int = 1) -> None:
        super().__init__()
        self.conv = RGATConv(
            channels,
            channels,
            num_relations=len(RELATIONS),
            heads=heads,
            concat=False,
            dropout=dropout,
        )
        for name in _RGAT_MOD_PARAMETERS:
            self.conv.register_parameter(name, None)

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, graph: Graph | None = None
    ) -> Streams:
        """Update ``(B, T, d)`` streams on ``graph`` (default: each video's own graph)."""
        batch, steps = audio.shape[:2]
        if graph is None:
            graph = video_graph(batch, steps, device=audio.device)
        if isinstance(graph, PairedBatch):
            graph = graph.edges(steps, audio.device)
        edge_index, edge_type = graph
        nodes = rgat_conv(self.conv, streams_to_nodes(audio, visual), edge_index, edge_type)
        return nodes_to_streams(F.silu(nodes), steps)  # (N, d) nodes -> (B, T, d) streams


def rgat_conv(
    conv: RGATConv, x: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor
) -> torch.Tensor:
    r"""``conv(x, edge_index, edge_type)`` for an :class:`RGATStage`'s RGATConv, in less memory.

    For an edge :math:`j \to i` of relation :math:`r`, with :math:`g_i = x_i W_r` and
    :math:`g_j = x_j W_r` split into :math:`H` heads, RGATConv's across-relation additive
    attention and head average are

    .. math::
        \alpha_{ij} = \mathrm{softmax}_{j \to i \text{ over all relations}}
        (\mathrm{LeakyReLU}(g_i q + g_j k)), \quad
        x'_i = \frac{1}{H} \sum_h \sum_{j \to i} \alpha^h_{ij} g^h_j + b

    with dropout on :math:`\alpha` in training. Here :math:`x W_r` is computed once per
    node and relation and gathered per edge.

    Args:
        conv: an RGATConv with ``mod=None``, no edge features, additive across-relation
            attention and ``concat=False``.
        x: ``(N, in_channels)`` node features.
        edge_index: ``(2, E)`` edges, source then target.
        edge_type: ``(E,)`` relation of each edge.

    Returns:
        ``(N, out_channels)`` node features.
    """
    n, relations, heads = x.size(0), conv.num_relations, conv.heads
    projected = torch.einsum("nd,rdo->nro", x, conv.weight).flatten(0, 1)  # (N*R, H*out)
    source, target = edge_index  # (E,) each
    g_j = projected[source * relations + edge_type]  # (E, H*out)
    g_i = projected[target * relations + edge_type]  # (E, H*out)
    logits = F.leaky_relu(g_i @ conv.q + g_j @ conv.k, conv.negative_slope)  # (E, H)
    alpha = F.dropout(softmax(logits, target, num_nodes=n), conv.dropout, conv.training)
    messages = alpha.unsqueeze(-1) * g_j.view(-1, heads, conv.out_channels)  # (E, H, out)
    summed = scatter(messages, target, dim=0, dim_size=n, reduce="sum")  # (N, H, out)
    return summed.mean(dim=1) + conv.bias  # (N, out)


class DPBlock(nn.Module):
    r"""Dual Perspective Block (seed 001 eq 7).

    .. math::
        \mathcal{F}^{DPBlock}_b = \mathcal{F}^{GNN}_b \to \mathcal{F}^{TCN}_b

    for ``order="graph_first"`` (the paper's DPNet, Table 3 row 8); ``"graph_second"``
    runs :math:`\mathcal{F}^{TCN}_b \to \mathcal{F}^{GNN}_b` (row 7). Both orders hold the
    same layers, so weights can be swapped between them.

    Args:
        channels: feature size :math:`d`.
        kernel: TCN kernel size :math:`k >= 2` (default 3).
        dropout: RGCT dropout probability (default 0.0).
        order: ``"graph_first"`` or ``"graph_second"`` (default ``"graph_first"``).
    """

    def __init__(
        self, channels: int, kernel: int = 3, dropout: float = 0.0, order: str = "graph_first"
    ) -> None:
        super().__init__()
        check_order("DPBlock", order)
        self.order = order
        self.graph = RGCTStage(channels, dropout)
        self.stream = StreamTCN(channels, kernel)

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, graph: Graph | None = None
    ) -> Streams:
        """Map ``(B, T, d)`` audio and visual streams to new ``(B, T, d)`` streams."""
        first, second = (self.graph, self.stream)
        if self.order == "graph_second":
            first, second = second, first
        return second(*first(audio, visual, graph), graph)


class PPBlock(nn.Module):
    r"""Parallel Perspective Block of seed 001 Table 3 row 6 (split-transform-merge).

    "parallel processing of both perspectives within a block using the split-transform-
    merge strategy": both perspectives get the block's whole input (split), run in
    parallel (transform) and their outputs are averaged (merge):

    .. math::
        F^m_{b+1} = \tfrac{1}{2} \left( \mathcal{F}^{GNN}_b(F_b)^m
        + \mathcal{F}^{TCN}_b(F_b)^m \right), \quad m \in \{A, V\}

    The mean (rather than a sum, or a concatenation and an FC) keeps the output on the
    scale of one Swish branch, as a :class:`DPBlock`'s, and the block the size of a
    DPBlock.

    Args:
        channels: feature size :math:`d`.
        kernel: TCN kernel size :math:`k >= 2` (default 3).
        dropout: RGCT dropout probability (default 0.0).
    """

    def __init__(self, channels: int, kernel: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.graph = RGCTStage(channels, dropout)
        self.stream = StreamTCN(channels, kernel)

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, graph: Graph | None = None
    ) -> Streams:
        """Map ``(B, T, d)`` audio and visual streams to new ``(B, T, d)`` streams."""
        graph_audio, graph_visual = self.graph(audio, visual, graph)  # (B, T, d) each
        stream_audio, stream_visual = self.stream(audio, visual)  # (B, T, d) each
        return (graph_audio + stream_audio) / 2, (graph_visual + stream_visual) / 2


class Gate(nn.Module):
    r"""Gated fusion of the two modalities (seed 001 eqs 9-10).

    .. math::
        \mathcal{F}^G_t = \sigma(\mathrm{FC}([\hat{f}^A_t, \hat{f}^V_t]; W_G)), \quad
        G^{AV}_t = \mathcal{F}^G_t \odot \hat{f}^A_t + (1 - \mathcal{F}^G_t) \odot
        \hat{f}^V_t

    an element-wise convex combination of the audio and visual features.

    Args:
        channels: feature size :math:`d` of each modality.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(2 * channels, channels)  # W_G

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """Fuse ``(B, T, d)`` audio and visual features into ``(B, T, d)``."""
        gate = torch.sigmoid(self.fc(torch.cat([audio, visual], dim=-1)))  # (B, T, d), eq 9
        return gate * audio + (1 - gate) * visual  # (B, T, d), eq 10


def parameter_count(make: Callable[[], nn.Module]) -> int:
    """The number of parameters of ``make()``, built on the meta device (no memory used)."""
    with torch.device("meta"):
        return sum(p.numel() for p in make().parameters())


def matched_count(
    blocks: int, block: Callable[[], nn.Module], unit: Callable[[], nn.Module]
) -> int:
    r"""How many ``unit()`` have about the parameter count of ``blocks`` ``block()``.

    Args:
        blocks: the number of blocks to match.
        block: builds one block of the reference network.
        unit: builds one unit (a layer, or a layer's share of one head).

    Returns:
        :math:`\max(1, \mathrm{round}(blocks \cdot |block| / |unit|))`.
    """
    return max(1, round(blocks * parameter_count(block) / parameter_count(unit)))


def he_init(module: nn.Module) -> None:
    r"""Variance-preserving (He / Kaiming normal) initialisation of FC, TCN and RGCT weights.

    The paper names no initialisation. PyTorch's default (uniform in
    :math:`\pm 1/\sqrt{fan_{in}}`) shrinks a signal's variance by about 3 per layer, and
    DPNet stacks ``2B`` Swish layers with no residual path (eqs 5-7, 15-16): at B = 4 the
    input then barely reaches the classifier and training stalls at chance for tens of
    epochs. Weights are drawn from :math:`\mathcal{N}(0, 2 / fan_{in})` (the ReLU gain,
    close to Swish's) and biases start at zero; that includes the relation weights of
    PyG's ``RGATConv`` (its attention vectors keep PyG's initialisation).

    Args:
        module: a module visited by ``nn.Module.apply``.
    """
    if isinstance(module, (nn.Linear, nn.Conv1d)):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        nn.init.zeros_(module.bias)
    elif isinstance(module, RGCT):
        for name in ("query", "key", "value"):
            weight = getattr(module, f"weight_{name}")  # (R, D_in, D_out), x @ W layout
            nn.init.normal_(weight, 0.0, math.sqrt(2.0 / weight.shape[1]))
            nn.init.zeros_(getattr(module, f"bias_{name}"))
    elif isinstance(module, RGATConv):
        weight = module.weight  # (R, D_in, heads * D_out), x @ W layout
        nn.init.normal_(weight, 0.0, math.sqrt(2.0 / weight.shape[1]))
        nn.init.zeros_(module.bias)
