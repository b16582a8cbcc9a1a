"""Video graph (seed 001 eqs 1-4) and linked graph (eqs 17-21) edge sets, listed by hand."""

import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.models.graph import (
    RELATIONS,
    linked_graph,
    nodes_to_streams,
    replica_batch_graph,
    streams_to_nodes,
    video_graph,
)


def _triples(edge_index: torch.Tensor, edge_type: torch.Tensor) -> list[tuple[int, int, str]]:
    """``(source, target, relation name)`` of every edge, in edge order."""
    return [
        (int(s), int(t), RELATIONS[int(r)])
        for s, t, r in zip(edge_index[0], edge_index[1], edge_type, strict=True)
    ]


def _in_neighbours(graph: tuple[torch.Tensor, torch.Tensor], node: int, relation: str) -> set:
    """Sources of the edges of ``relation`` that enter ``node`` (eta_node^relation)."""
    triples = _triples(*graph)
    return {s for s, t, r in triples if t == node and r == relation}


def test_relations_are_the_contract_order():
    assert RELATIONS == (
        "audio_forward",
        "audio_backward",
        "visual_forward",
        "visual_backward",
        "audio_to_visual",
        "visual_to_audio",
    )


def test_streams_to_nodes_layout_and_inverse():
    audio = torch.randn(3, 4, 5)
    visual = torch.randn(3, 4, 5)
    nodes = streams_to_nodes(audio, visual)
    assert nodes.shape == (3 * 8, 5)
    for b in range(3):
        for t in range(4):
            assert torch.equal(nodes[b * 8 + 0 * 4 + t], audio[b, t])
            assert torch.equal(nodes[b * 8 + 1 * 4 + t], visual[b, t])
    back_audio, back_visual = nodes_to_streams(nodes, 4)
    assert torch.equal(back_audio, audio)
    assert torch.equal(back_visual, visual)
    x = torch.randn(16, 2)
    assert torch.equal(streams_to_nodes(*nodes_to_streams(x, 2)), x)


def test_stream_conversion_rejects_bad_shapes():
    with pytest.raises(PipelineError, match="audio and visual"):
        streams_to_nodes(torch.zeros(2, 3, 4), torch.zeros(2, 3, 5))
    with pytest.raises(PipelineError, match="nodes: expected shape"):
        nodes_to_streams(torch.zeros(10, 4), 3)
    with pytest.raises(PipelineError, match="T: expected an integer >= 1"):
        nodes_to_streams(torch.zeros(10, 4), 0)


def test_video_graph_of_three_segments_by_hand():
    # Nodes: audio a1, a2, a3 = 0, 1, 2; visual v1, v2, v3 = 3, 4, 5. A pair (n, n') of
    # eqs 1-4 is the edge n -> n' (source, target).
    expected = [
        (0, 1, "audio_forward"),  # eq 1: (a1, a2)
        (1, 2, "audio_forward"),  # (a2, a3)
        (1, 0, "audio_backward"),  # eq 2: (a2, a1)
        (2, 1, "audio_backward"),  # (a3, a2)
        (3, 4, "visual_forward"),  # (v1, v2)
        (4, 5, "visual_forward"),  # (v2, v3)
        (4, 3, "visual_backward"),  # (v2, v1)
        (5, 4, "visual_backward"),  # (v3, v2)
        (0, 3, "audio_to_visual"),  # eq 3: (a1, v1)
        (1, 4, "audio_to_visual"),
        (2, 5, "audio_to_visual"),
        (3, 0, "visual_to_audio"),  # eq 4: (v1, a1)
        (4, 1, "visual_to_audio"),
        (5, 2, "visual_to_audio"),
    ]
    edge_index, edge_type = video_graph(1, 3)
    assert edge_index.dtype == torch.long and edge_type.dtype == torch.long
    assert _triples(edge_index, edge_type) == expected


def test_forward_neighbour_is_the_predecessor():
    graph = video_graph(1, 3)
    # Audio segment 2 (node 1): predecessor a1 forward, successor a3 backward, twin v2.
    assert _in_neighbours(graph, 1, "audio_forward") == {0}
    assert _in_neighbours(graph, 1, "audio_backward") == {2}
    assert _in_neighbours(graph, 1, "visual_to_audio") == {4}
    assert _in_neighbours(graph, 1, "audio_to_visual") == set()
    # The first segment has no forward neighbour, the last no backward neighbour.
    assert _in_neighbours(graph, 3, "visual_forward") == set()
    assert _in_neighbours(graph, 5, "visual_backward") == set()
    assert _in_neighbours(graph, 5, "visual_forward") == {4}


def test_video_graph_batches_disjoint_offset_copies():
    single_index, single_type = video_graph(1, 4)
    edge_index, edge_type = video_graph(3, 4)
    n_edges = single_index.size(1)
    assert n_edges == 6 * 4 - 4
    for b in range(3):
        block = slice(b * n_edges, (b + 1) * n_edges)
        assert torch.equal(edge_index[:, block], single_index + b * 8)
        assert torch.equal(edge_type[block], single_type)


def test_video_graph_of_one_segment_has_only_cross_modal_edges():
    edge_index, edge_type = video_graph(2, 1)
    assert _triples(edge_index, edge_type) == [
        (0, 1, "audio_to_visual"),
        (1, 0, "visual_to_audio"),
        (2, 3, "audio_to_visual"),
        (3, 2, "visual_to_audio"),
    ]


def test_graphs_reject_bad_sizes():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(PipelineError, match="batch_size"):
            video_graph(bad, 3)
        with pytest.raises(PipelineError, match="T: expected"):
            linked_graph(2, bad)


def test_graphs_on_a_device():
    edge_index, edge_type = linked_graph(2, 3, device="cpu")
    assert edge_index.device.type == "cpu" and edge_type.device.type == "cpu"


def test_linked_graph_of_two_segments_by_hand():
    # Original video (slot 0): audio a1, a2 = 0, 1; visual v1, v2 = 2, 3.
    # Replica (slot 1):        audio a1', a2' = 4, 5; visual v1', v2' = 6, 7.
    # Eqs 17-20 take both ends from all of N^link, so each video-graph edge appears as
    # original->original, replica->replica, original->replica and replica->original.
    expected = {
        # eq 17, audio: (a1 or a1') -> (a2 or a2')
        (0, 1, "audio_forward"),
        (4, 5, "audio_forward"),
        (0, 5, "audio_forward"),
        (4, 1, "audio_forward"),
        # eq 18, audio: (a2 or a2') -> (a1 or a1')
        (1, 0, "audio_backward"),
        (5, 4, "audio_backward"),
        (1, 4, "audio_backward"),
        (5, 0, "audio_backward"),
        # eq 17, visual
        (2, 3, "visual_forward"),
        (6, 7, "visual_forward"),
        (2, 7, "visual_forward"),
        (6, 3, "visual_forward"),
        # eq 18, visual
        (3, 2, "visual_backward"),
        (7, 6, "visual_backward"),
        (3, 6, "visual_backward"),
        (7, 2, "visual_backward"),
        # eq 19: (a_t or a_t') -> (v_t or v_t')
        (0, 2, "audio_to_visual"),
        (1, 3, "audio_to_visual"),
        (4, 6, "audio_to_visual"),
        (5, 7, "audio_to_visual"),
        (0, 6, "audio_to_visual"),
        (1, 7, "audio_to_visual"),
        (4, 2, "audio_to_visual"),
        (5, 3, "audio_to_visual"),
        # eq 20: (v_t or v_t') -> (a_t or a_t')
        (2, 0, "visual_to_audio"),
        (3, 1, "visual_to_audio"),
        (6, 4, "visual_to_audio"),
        (7, 5, "visual_to_audio"),
        (2, 4, "visual_to_audio"),
        (3, 5, "visual_to_audio"),
        (6, 0, "visual_to_audio"),
        (7, 1, "visual_to_audio"),
    }
    triples = _triples(*linked_graph(1, 2))
    assert len(triples) == 32
    assert set(triples) == expected


def test_linked_graph_blocks_and_neighbourhoods():
    B, T = 3, 4
    video_index, video_type = video_graph(B, T)
    edge_index, edge_type = linked_graph(B, T)
    n = video_index.size(1)
    assert edge_index.size(1) == 4 * n
    replica = B * 2 * T  # node offset of the replica slots
    # Blocks: original->original, replica->replica, original->replica, replica->original.
    shifts = [(0, 0), (replica, replica), (0, replica), (replica, 0)]
    for block, (source_shift, target_shift) in enumerate(shifts):
        part = slice(block * n, (block + 1) * n)
        assert torch.equal(edge_index[0, part], video_index[0] + source_shift)
        assert torch.equal(edge_index[1, part], video_index[1] + target_shift)
        assert torch.equal(edge_type[part], video_type)
    # No duplicate edges, and no edge between different pairs.
    assert len(set(_triples(edge_index, edge_type))) == 4 * n
    pair = (edge_index // (2 * T)) % B  # (2, E)
    assert torch.equal(pair[0], pair[1])
    # Every node receives each of its relations from both videos of its pair.
    linked = (edge_index, edge_type)
    assert _in_neighbours(linked, 1, "audio_forward") == {0, replica + 0}
    assert _in_neighbours(linked, replica + 1, "audio_forward") == {0, replica + 0}
    assert _in_neighbours(linked, T + 2, "audio_to_visual") == {2, replica + 2}
    assert _in_neighbours(linked, 0, "audio_forward") == set()


def test_replica_batch_graph_is_linked_pairs_then_own_graphs():
    pairs_only = replica_batch_graph(3, 0)
    assert all(torch.equal(a, b) for a, b in zip(pairs_only, linked_graph(3), strict=True))
    singles_only = replica_batch_graph(0, 2)
    assert all(torch.equal(a, b) for a, b in zip(singles_only, video_graph(2), strict=True))
    edge_index, edge_type = replica_batch_graph(2, 3)
    linked, own = linked_graph(2), video_graph(3)
    n_linked = linked[0].shape[1]
    assert torch.equal(edge_index[:, :n_linked], linked[0])
    assert torch.equal(edge_index[:, n_linked:], own[0] + 2 * 2 * 20)  # after 4 videos
    assert torch.equal(edge_type, torch.cat([linked[1], own[1]]))
    # no edge joins an unpaired video to any other video
    video = edge_index // 20
    assert bool((video[0] == video[1])[n_linked:].all())
    with pytest.raises(PipelineError, match="at least one video"):
        replica_batch_graph(0, 0)
