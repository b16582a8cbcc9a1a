r"""The Relational Graph Convolutional Transformer (RGCT) of seed 001 §3.3 (eqs 12-16).

:class:`RGCT` is a :class:`torch_geometric.nn.MessagePassing` layer over any graph with
typed edges (:meth:`RGCT.forward`), plus a dense path over the video graphs of a batch
(:meth:`RGCT.forward_dense`) that computes the same function with the same parameters
from tensor shifts and a few batched matrix products.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from pipeline.errors import PipelineError
from pipeline.models.checks import check_int, check_probability
from pipeline.models.graph import RELATIONS

# The relations entering an audio node, then those entering a visual node, each in the slot
# order (forward, backward, cross-modal). With the six video relations the per-relation
# parameters are stored in this order, so that row m * 3 + s serves slot s of the nodes of
# modality m in forward_dense's (modality, slot) batch.
_TARGET_GROUPED = tuple(
    RELATIONS.index(name)
    for name in (
        "audio_forward",
        "audio_backward",
        "visual_to_audio",
        "visual_forward",
        "visual_backward",
        "audio_to_visual",
    )
)
_SLOTS = 3  # relations entering a node of either modality in the video graph


def _project(weight: Tensor, bias: Tensor, inputs: Tensor) -> Tensor:
    """Batched FC layers: ``inputs[g] @ weight[g] + bias[g]`` for every group ``g``.

    Args:
        weight: ``(G, D_in, D_out)`` weights.
        bias: ``(G, D_out)`` biases.
        inputs: ``(G, M, D_in)`` inputs.

    Returns:
        ``(G, M, D_out)`` outputs.
    """
    return torch.baddbmm(bias.unsqueeze(1), inputs, weight)


def _shift(x: Tensor, step: int) -> Tensor:
    """Segment ``t - step`` of ``x`` ``(..., T, D)`` at ``t``; zeros where there is none."""
    if step > 0:
        return F.pad(x[..., :-step, :], (0, 0, step, 0))  # (..., T, D)
    return F.pad(x[..., -step:, :], (0, 0, 0, -step))  # (..., T, D)


def _project_slots(weight: Tensor, bias: Tensor, inputs: Tensor) -> Tensor:
    """:func:`_project` over the (modality, slot) batch of the dense path.

    Args:
        weight: ``(6, D, D)`` weights, row ``m * 3 + s`` for modality ``m``, slot ``s``.
        bias: ``(6, D)`` biases.
        inputs: ``(2, 3, B, T, D)`` inputs per modality and slot.

    Returns:
        ``(2, B, T, 3, D)`` outputs, slots last but one (a view of a contiguous product).
    """
    m, s, b, t, d = inputs.shape
    out = _project(weight, bias, inputs.reshape(m * s, b * t, d))  # (6, BT, D)
    return out.view(m, s, b, t, d).permute(0, 2, 3, 1, 4)  # (2, B, T, 3, D)


def _slot_present(t: int, device: torch.device) -> Tensor:
    """``(T, 3)`` bool: which slots (forward, backward, cross) have a neighbour at ``t``."""
    segment = torch.arange(t, device=device)  # (T,)
    cross = torch.ones_like(segment, dtype=torch.bool)  # (T,)
    return torch.stack([segment > 0, segment < t - 1, cross], dim=-1)  # (T, 3)


def _attend(q: Tensor, k: Tensor, v: Tensor, present: Tensor) -> Tensor:
    r"""Cross-relational attention averaged over the relations (seed 001 eqs 13-14).

    With :math:`P_i` the relations of node :math:`i` whose neighbourhood is non-empty, it
    computes :math:`\frac{1}{|P_i|} \sum_{q \in P_i} (Att_i V_i)_q` where
    :math:`Att_i = \mathrm{Softmax}(Q_i K_i^T / \sqrt{d})` over the keys of :math:`P_i`
    only. It is evaluated as :math:`(w^T Att_i) V_i` with :math:`w_q = 1 / |P_i|` on
    :math:`P_i` and 0 elsewhere, which never forms the ``(S, D)`` product. A node with
    :math:`P_i = \emptyset` gives 0 (its softmax runs over all keys to stay finite and is
    then weighted by 0).

    Args:
        q: ``(..., S, D)`` queries, one per relation slot.
        k: ``(..., S, D)`` keys.
        v: ``(..., S, D)`` values.
        present: ``(..., S)`` bool, the slots with a non-empty neighbourhood (broadcast
            against the batch dimensions of ``q``).

    Returns:
        ``(..., D)`` the relation-averaged aggregation :math:`\overline{NA}_{att}`, in the
        dtype of ``v``; computed in at least float32 under any autocast (fp16 overflows
        otherwise), in float64 for float64 inputs.
    """
    dtype = v.dtype
    # at least float32 whatever the autocast: a dot product of D features in the hundreds
    # leaves fp16's range (65504), and inf - inf in the softmax gives NaN; upcast only, so
    # that a float64 run keeps float64 (tests/models/test_rgct.py)
    work = torch.promote_types(torch.promote_types(q.dtype, k.dtype), v.dtype)
    work = torch.promote_types(work, torch.float32)
    with torch.autocast(q.device.type, enabled=False):
        q, k, v = q.to(work), k.to(work), v.to(work)
        logits = q @ k.transpose(-1, -2) / math.sqrt(q.size(-1))  # (..., S, S)
        keys = present | ~present.any(-1, keepdim=True)  # (..., S)
        logits = logits.masked_fill(~keys.unsqueeze(-2), float("-inf"))  # (..., S, S)
        att = torch.softmax(logits, dim=-1)  # (..., S, S), eq 13
        rows = present.to(q.dtype)  # (..., S)
        rows = rows / rows.sum(-1, keepdim=True).clamp(min=1)  # (..., S): avg_r weights
        return (rows.unsqueeze(-2) @ att @ v).squeeze(-2).to(dtype)  # (..., D), eq 14


class RGCT(MessagePassing):
    r"""Relational Graph Convolutional Transformer layer (seed 001 §3.3, eqs 12-16).

    For node :math:`n_i` and each relation :math:`r` it aggregates the in-neighbourhood
    :math:`\eta_i^r` by its mean (eq 12), projects the node into its relational polymorph
    :math:`Q_i^r = \mathrm{FC}(n_i; W_Q^r)` and the aggregate into
    :math:`K_i^r = \mathrm{FC}(NA(\eta_i^r); W_K^r)` and
    :math:`V_i^r = \mathrm{FC}(NA(\eta_i^r); W_V^r)`, and mixes the relations with the
    :math:`|R| \times |R|` cross-relational attention (eqs 13-14):

    .. math::
        Att_i &= \mathrm{Softmax}\Big(\frac{Q_i K_i^T}{\sqrt{d}}\Big), \quad
        \overline{NA}_{att}(\eta_i) = \mathrm{avg}_r (Att_i V_i)_r

        \hat{n}_i &= \mathrm{Swish}(\mathrm{FC}(n_i; W_1)), \quad
        n_i' = \mathrm{Swish}(\mathrm{FC}(\hat{n}_i +
        \mathrm{DropOut}(\overline{NA}_{att}(\eta_i)); W_2))

    (eqs 15-16), with :math:`\mathrm{Swish}(x) = x \sigma(x)` (:math:`\beta = 1`).

    **Empty neighbourhoods.** A relation :math:`r` with :math:`\eta_i^r = \emptyset` (the
    first segment's forward relation, the last segment's backward relation, and in a video
    graph the three relations that enter the other modality) contributes nothing: its key
    is masked out of the softmax (logit :math:`-\infty`) and its row of
    :math:`Att_i V_i` is left out of the average over relations. The node is updated as if
    :math:`R` held only its non-empty relations; a zero aggregate would otherwise still
    give the key and value :math:`\mathrm{FC}(0) = b`, a spurious value with attention
    weight. A node with no neighbour at all gets :math:`\overline{NA}_{att} = 0`, so
    :math:`n_i' = \mathrm{Swish}(\mathrm{FC}(\hat{n}_i; W_2))`.

    **Biases.** The paper writes every projection as an FC layer, so all of them
    (:math:`W_Q^r, W_K^r, W_V^r, W_1, W_2`) are affine, as in the original Transformer's
    projections; with the masking above, the key and value biases never reach a node
    through an empty relation.

    The per-relation weights ``weight_query``, ``weight_key``, ``weight_value``
    ``(R, D, D)`` (the ``x @ W`` layout of PyG's ``RGCNConv``, input by output) and biases
    ``(R, D)`` hold relation ``r`` at row ``relation_rows[r]``. With the six
    :data:`RELATIONS` the rows are grouped by the modality of the receiving node, in the
    slot order (forward, backward, cross-modal), so that :meth:`forward_dense` uses each
    tensor whole in one batched product; with another number of relations, row ``r`` is
    relation ``r``.

    Args:
        channels: node feature size :math:`d`, of both input and output.
        num_relations: relations :math:`|R|` (default 6, :data:`RELATIONS`).
        dropout: dropout probability on :math:`\overline{NA}_{att}` (default 0.0).
    """

    relation_rows: Tensor

    def __init__(self, channels: int, num_relations: int = 6, dropout: float = 0.0) -> None:
        super().__init__(aggr="mean", node_dim=0)
        check_int("RGCT", "channels", channels)
        check_int("RGCT", "num_relations", num_relations)
        check_probability("RGCT", "dropout", dropout)
        self.channels = channels
        self.num_relations = num_relations
        order = _TARGET_GROUPED if num_relations == len(RELATIONS) else range(num_relations)
        rows = torch.argsort(torch.tensor(order))  # relation r -> its storage row
        self.register_buffer("relation_rows", rows, persistent=False)
        shape = (num_relations, channels, channels)
        self.weight_query = nn.Parameter(torch.empty(shape))  # W_Q^r
        self.weight_key = nn.Parameter(torch.empty(shape))  # W_K^r
        self.weight_value = nn.Parameter(torch.empty(shape))  # W_V^r
        self.bias_query = nn.Parameter(torch.empty(num_relations, channels))
        self.bias_key = nn.Parameter(torch.empty(num_relations, channels))
        self.bias_value = nn.Parameter(torch.empty(num_relations, channels))
        self.lin1 = nn.Linear(channels, channels)  # W_1, eq 15
        self.lin2 = nn.Linear(channels, channels)  # W_2, eq 16
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise every FC as ``nn.Linear`` does: uniform in ``±1/sqrt(d)``."""
        super().reset_parameters()
        bound = 1 / math.sqrt(self.channels)
        for name in ("query", "key", "value"):
            nn.init.uniform_(getattr(self, f"weight_{name}"), -bound, bound)
            nn.init.uniform_(getattr(self, f"bias_{name}"), -bound, bound)
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def _update_nodes(self, x: Tensor, na: Tensor) -> Tensor:
        """Eqs 15-16 on ``(..., D)`` nodes ``x`` and aggregations ``na``."""
        hidden = F.silu(self.lin1(x))  # (..., D), eq 15
        return F.silu(self.lin2(hidden + self.dropout(na)))  # (..., D), eq 16

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        """Update every node of a graph with typed edges (seed 001 eqs 12-16).

        Args:
            x: ``(N, D)`` node features.
            edge_index: ``(2, E)`` edges, ``edge_index[0]`` the source, ``edge_index[1]``
                the target (messages flow source → target).
            edge_type: ``(E,)`` relation of each edge, in ``[0, num_relations)``.

        Returns:
            ``(N, D)`` updated node features.
        """
        if x.dim() != 2 or x.size(1) != self.channels:
            raise PipelineError(
                f"RGCT nodes: expected shape (N, {self.channels}), found {tuple(x.shape)}"
            )
        n, r = x.size(0), self.num_relations
        if edge_type.numel() and (int(edge_type.min()) < 0 or int(edge_type.max()) >= r):
            raise PipelineError(f"RGCT edge_type: expected values in [0, {self.num_relations})")
        group = edge_index[1] * r + self.relation_rows[edge_type]  # (E,): (target, row)
        na = self.propagate(edge_index, x=x, group=group).view(n, r, -1)  # (N, R, D), eq 12
        present = torch.bincount(group, minlength=n * r).view(n, r) > 0  # (N, R)
        q = _project(self.weight_query, self.bias_query, x.expand(r, -1, -1))  # (R, N, D)
        k = _project(self.weight_key, self.bias_key, na.transpose(0, 1))  # (R, N, D)
        v = _project(self.weight_value, self.bias_value, na.transpose(0, 1))  # (R, N, D)
        na_bar = _attend(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), present)
        return self._update_nodes(x, na_bar)  # (N, D)

    def aggregate(self, inputs: Tensor, group: Tensor, dim_size: int) -> Tensor:
        """Mean of the messages of each (target, relation) pair (eq 12); 0 for none.

        Args:
            inputs: ``(E, D)`` messages (the source features).
            group: ``(E,)`` ``target * num_relations + row`` of each message.
            dim_size: the number of nodes :math:`N`.

        Returns:
            ``(N * num_relations, D)`` aggregations.
        """
        return self.aggr_module(inputs, group, dim_size=dim_size * self.num_relations, dim=0)

    def forward_dense(self, audio: Tensor, visual: Tensor, pairs: int = 0) -> tuple[Tensor, Tensor]:
        """:meth:`forward` on ``video_graph(B, T)`` of the streams, with tensor shifts.

        A video graph node has exactly one neighbour per non-empty relation (its
        predecessor, its successor, its other-modality twin), so eq 12 is a shift of the
        streams. Each node's three relation slots (forward, backward, cross-modal) give a
        ``(6, B * T, D)`` batch over (modality, slot): the node itself for the queries,
        the slot's neighbour for the keys and values, each projected by one batched
        product with the parameters of :meth:`forward`.

        With ``pairs`` > 0 the first ``2 * pairs`` videos are originals and their replicas
        in the layout of :func:`~pipeline.models.graph.replica_batch_graph`, whose linked
        graph (eqs 17-21) gives a node of either video of a pair the same two neighbours
        per relation, one in each video: eq 12's mean is then a shift of the pair's mean
        streams. This equals :meth:`forward` on ``replica_batch_graph(pairs, B - 2 *
        pairs, T)``.

        Args:
            audio: ``(B, T, D)`` audio node features.
            visual: ``(B, T, D)`` visual node features.
            pairs: linked original/replica pairs at the front of the batch (default 0).

        Returns:
            ``(audio, visual)`` updated features, each ``(B, T, D)``.
        """
        if self.num_relations != len(RELATIONS):
            raise PipelineError(
                f"RGCT forward_dense: needs the {len(RELATIONS)} video relations, "
                f"found num_relations = {self.num_relations}"
            )
        if audio.dim() != 3 or audio.shape != visual.shape or audio.size(-1) != self.channels:
            raise PipelineError(
                f"RGCT audio and visual: expected two tensors of shape (B, T, {self.channels}),"
                f" found {tuple(audio.shape)} and {tuple(visual.shape)}"
            )
        b, t, d = audio.shape
        if not 0 <= 2 * pairs <= b:
            raise PipelineError(f"RGCT pairs: expected 0 <= 2 * pairs <= {b}, found {pairs}")
        x = torch.stack([audio, visual])  # (2, B, T, D), modality first
        nodes = x.unsqueeze(1).expand(2, _SLOTS, b, t, d)  # (2, 3, B, T, D): for Q^r
        # NA(eta^r): predecessor, successor, other-modality twin (mean over a linked pair).
        linked = (x[:, :pairs] + x[:, pairs : 2 * pairs]) / 2  # (2, P, T, D)
        near = torch.cat([linked, linked, x[:, 2 * pairs :]], dim=1) if pairs else x
        sources = torch.stack([_shift(near, 1), _shift(near, -1), near.flip(0)], dim=1)
        q = _project_slots(self.weight_query, self.bias_query, nodes)  # (2, B, T, 3, D)
        k = _project_slots(self.weight_key, self.bias_key, sources)  # (2, B, T, 3, D)
        v = _project_slots(self.weight_value, self.bias_value, sources)  # (2, B, T, 3, D)
        na_bar = _attend(q, k, v, _slot_present(t, x.device))  # (2, B, T, D)
        out = self._update_nodes(x, na_bar)  # (2, B, T, D)
        return out[0], out[1]

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, num_relations={self.num_relations})"
