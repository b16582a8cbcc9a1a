r"""The graph perspective of a batch of videos (seed 001 §3.2 eqs 1-4, §3.4 eqs 17-21).

Every video of :math:`T` segments gives :math:`2T` nodes, one per audio and one per visual
segment. A batch of :math:`B` videos is one disconnected graph whose node
``b * 2T + m * T + t`` is segment ``t`` (0-based) of modality ``m`` (0 audio, 1 visual) of
video ``b``; :func:`streams_to_nodes` and :func:`nodes_to_streams` convert between that
layout and the ``(B, T, D)`` streams.

Edges follow the PyG convention: ``edge_index[0]`` is the source :math:`j`,
``edge_index[1]`` the target :math:`i`, and messages flow :math:`j \to i`, so the relational
neighbourhood :math:`\eta_i^r` of seed 001 eq 12 is the set of in-neighbours of :math:`i`
under relation :math:`r`. A pair :math:`(n, n')` of the paper's edge sets is read as
(source, target), the usual reading of a directed edge:

* eq 1, :math:`\mathcal{E}_{r_f} = \{(n_t, n_{t+1})\}`: the forward relation carries
  segment :math:`t-1` to segment :math:`t`; a node's forward neighbour is its predecessor
  (the first segment has none).
* eq 2, :math:`\mathcal{E}_{r_b} = \{(n_t, n_{t-1})\}`: the backward relation carries
  segment :math:`t+1` to segment :math:`t`; a node's backward neighbour is its successor
  (the last segment has none).
* eqs 3-4, :math:`\mathcal{E}_{r_{AV}} = \{(n_t^A, n_t^V)\}`,
  :math:`\mathcal{E}_{r_{VA}} = \{(n_t^V, n_t^A)\}`: audio-to-visual edges enter visual
  nodes, visual-to-audio edges enter audio nodes.

So an audio node has in-neighbours only under ``audio_forward``, ``audio_backward`` and
``visual_to_audio``, and a visual node only under ``visual_forward``, ``visual_backward``
and ``audio_to_visual``.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from pipeline.errors import PipelineError
from pipeline.models.checks import check_int

RELATIONS: tuple[str, ...] = (
    "audio_forward",
    "audio_backward",
    "visual_forward",
    "visual_backward",
    "audio_to_visual",
    "visual_to_audio",
)

# Per relation: (source modality, target modality, target segment - source segment).
_RELATION_STEPS: dict[str, tuple[int, int, int]] = {
    "audio_forward": (0, 0, 1),
    "audio_backward": (0, 0, -1),
    "visual_forward": (1, 1, 1),
    "visual_backward": (1, 1, -1),
    "audio_to_visual": (0, 1, 0),
    "visual_to_audio": (1, 0, 0),
}

# Linked graph blocks as (source copy, target copy), 0 original, 1 replica (eqs 17-21).
_LINKED_COPIES = ((0, 0), (1, 1), (0, 1), (1, 0))


def streams_to_nodes(audio: Tensor, visual: Tensor) -> Tensor:
    """Stack the audio and visual streams into the node features of the batch graph.

    Args:
        audio: ``(B, T, D)`` audio segment features.
        visual: ``(B, T, D)`` visual segment features.

    Returns:
        ``(B * 2T, D)`` node features; row ``b * 2T + m * T + t`` is segment ``t`` of
        modality ``m`` (0 audio, 1 visual) of video ``b``.
    """
    if audio.dim() != 3 or audio.shape != visual.shape:
        raise PipelineError(
            f"audio and visual: expected two (B, T, D) tensors of one shape, found "
            f"{tuple(audio.shape)} and {tuple(visual.shape)}"
        )
    return torch.stack([audio, visual], dim=1).flatten(0, 2)  # (B * 2T, D)


def nodes_to_streams(x: Tensor, T: int) -> tuple[Tensor, Tensor]:
    """Split node features back into streams; the inverse of :func:`streams_to_nodes`.

    Args:
        x: ``(B * 2T, D)`` node features in the layout of :func:`streams_to_nodes`.
        T: segments per video.

    Returns:
        ``(audio, visual)``, each ``(B, T, D)``.
    """
    check_int("video graph", "T", T)
    if x.dim() != 2 or x.size(0) % (2 * T) != 0:
        raise PipelineError(
            f"nodes: expected shape (B * {2 * T}, D) for T = {T}, found {tuple(x.shape)}"
        )
    streams = x.unflatten(0, (-1, 2, T))  # (B, 2, T, D)
    return streams[:, 0], streams[:, 1]


def _video_edges(T: int, device: torch.device | str | None) -> tuple[Tensor, Tensor, Tensor]:
    """Source, target (node ids within one video, ``m * T + t``) and type of every edge.

    Edges are grouped by relation in :data:`RELATIONS` order, by increasing segment within.
    """
    sources, targets, types = [], [], []
    for relation, name in enumerate(RELATIONS):
        source_m, target_m, step = _RELATION_STEPS[name]
        t = torch.arange(max(0, -step), T - max(0, step), device=device)  # source segments
        sources.append(source_m * T + t)
        targets.append(target_m * T + t + step)
        types.append(torch.full_like(t, relation))
    return torch.cat(sources), torch.cat(targets), torch.cat(types)


def video_graph(
    batch_size: int, T: int = 10, device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    r"""Edges of the video graphs of a batch (seed 001 eqs 1-4).

    Each video gets :math:`2(T-1)` edges per modality (eqs 1-2) and :math:`T` edges per
    cross-modal relation (eqs 3-4), :math:`6T - 4` in all; a pair :math:`(n, n')` of the
    paper is the edge :math:`n \to n'` (see the module docstring). Edges are ordered by
    video, then by relation in :data:`RELATIONS` order, then by segment.

    Args:
        batch_size: videos :math:`B` in the batch.
        T: segments per video (default 10).
        device: device of the returned tensors (default ``None``, the CPU).

    Returns:
        ``edge_index`` ``(2, B * (6T - 4))`` over the node layout of
        :func:`streams_to_nodes` and ``edge_type`` ``(B * (6T - 4),)`` indexing
        :data:`RELATIONS`.
    """
    check_int("video graph", "batch_size", batch_size)
    check_int("video graph", "T", T)
    source, target, relation = _video_edges(T, device)  # (E,) each
    offset = torch.arange(batch_size, device=device).unsqueeze(1) * 2 * T  # (B, 1)
    edge_index = torch.stack([(offset + source).flatten(), (offset + target).flatten()])
    return edge_index, relation.repeat(batch_size)


def linked_graph(
    batch_size: int, T: int = 10, device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    r"""Edges of the linked graphs of originals and their replicas (seed 001 eqs 17-21).

    The batch holds :math:`2B` videos: original :math:`b` at video slot :math:`b` and its
    replica at slot :math:`B + b` (nodes as in :func:`streams_to_nodes` over the
    :math:`2B` videos). Eqs 17-20 draw the nodes of each edge from all of
    :math:`\mathcal{N}^{link} = \mathcal{N}^{orig} \cup \mathcal{N}^{rep}`: an edge of
    relation :math:`r` joins *any* node of the pair at the source segment and modality to
    *any* node at the target segment and modality. So every edge :math:`j \to i` of the
    video graph (eqs 1-4, same direction convention) appears four times, as
    original→original, replica→replica, original→replica and replica→original, and every
    node receives each of its relations from both videos of the pair ("reference audio
    and visual nodes receive relevant edge connections from both the original and replica
    graphs", Fig. 4b). No edge joins a node to its same-modality, same-segment counterpart
    in the other video (eqs 17-20 define none), and no edge joins different pairs.

    Edges come in four blocks, original→original, replica→replica, original→replica,
    replica→original; within a block they are ordered as in :func:`video_graph`, so the
    first block equals ``video_graph(batch_size, T)``.

    Args:
        batch_size: pairs :math:`B` (originals) in the batch.
        T: segments per video (default 10).
        device: device of the returned tensors (default ``None``, the CPU).

    Returns:
        ``edge_index`` ``(2, 4B(6T - 4))`` over :math:`2B \cdot 2T` nodes and
        ``edge_type`` ``(4B(6T - 4),)`` indexing :data:`RELATIONS`.
    """
    check_int("video graph", "batch_size", batch_size)
    check_int("video graph", "T", T)
    source, target, relation = _video_edges(T, device)  # (E,) each
    copies = torch.tensor(_LINKED_COPIES, device=device)  # (4, 2)
    video = torch.arange(batch_size, device=device)  # (B,)
    slots = copies.unsqueeze(-1) * batch_size + video  # (4, 2, B): video slot per end
    offset = slots.unsqueeze(-1) * 2 * T  # (4, 2, B, 1)
    edge_index = torch.stack([(offset[:, 0] + source).flatten(), (offset[:, 1] + target).flatten()])
    return edge_index, relation.repeat(len(_LINKED_COPIES) * batch_size)


def replica_batch_graph(
    pairs: int, singles: int, T: int = 10, device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    r"""Edges of a training batch of linked pairs followed by unpaired videos.

    Video slots ``0 .. 2 * pairs - 1`` hold the originals and their replicas in the layout of
    :func:`linked_graph` (eqs 17-21); slots ``2 * pairs .. 2 * pairs + singles - 1`` hold
    videos without a replica (e.g. SMB-fused videos), each with its own graph (eqs 1-4).

    Args:
        pairs: originals that have a replica in the batch (may be 0).
        singles: videos without a replica (may be 0).
        T: segments per video (default 10).
        device: device of the returned tensors (default ``None``, the CPU).

    Returns:
        ``edge_index`` over :math:`(2 \cdot pairs + singles) \cdot 2T` nodes and
        ``edge_type``.
    """
    parts = []
    if pairs:
        parts.append(linked_graph(pairs, T, device))
    if singles:
        edge_index, edge_type = video_graph(singles, T, device)
        parts.append((edge_index + 2 * pairs * 2 * T, edge_type))
    if not parts:
        raise PipelineError("video graph: expected at least one video in the batch")
    return torch.cat([p[0] for p in parts], dim=1), torch.cat([p[1] for p in parts])


@dataclass(frozen=True)
class PairedBatch:
    """A batch laid out as :func:`replica_batch_graph` describes, without its edges.

    Graph layers that can use the layout directly (the dense RGCT path) do; others build
    the edges with :meth:`edges`.

    Args:
        pairs: originals that have a replica in the batch.
        singles: videos without a replica, after the pairs.
    """

    pairs: int
    singles: int

    def edges(self, T: int = 10, device: torch.device | str | None = None):
        """``(edge_index, edge_type)`` of :func:`replica_batch_graph` for this layout."""
        return replica_batch_graph(self.pairs, self.singles, T, device)
