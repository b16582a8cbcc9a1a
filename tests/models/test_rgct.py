"""RGCT (seed 001 eqs 12-16): hand computation, a loop reference, empty neighbourhoods and
the dense path against the message-passing path."""

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.errors import PipelineError
from pipeline.models.graph import (
    RELATIONS,
    linked_graph,
    nodes_to_streams,
    replica_batch_graph,
    streams_to_nodes,
    video_graph,
)
from pipeline.models.rgct import RGCT, _attend


def _layer(channels: int = 8, dtype: torch.dtype = torch.float64, seed: int = 0) -> RGCT:
    """A seeded RGCT without dropout, in eval mode."""
    torch.manual_seed(seed)
    return RGCT(channels).to(dtype).eval()


def _streams(B: int, T: int, D: int, dtype: torch.dtype = torch.float64) -> tuple:
    """Random ``(audio, visual)`` streams that require gradients."""
    audio = torch.randn(B, T, D, dtype=dtype, requires_grad=True)
    visual = torch.randn(B, T, D, dtype=dtype, requires_grad=True)
    return audio, visual


def _reference(layer: RGCT, x: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor):
    """Eqs 12-16 node by node and relation by relation, keeping only non-empty relations."""
    d = x.size(1)
    outputs = []
    for i in range(x.size(0)):
        queries, keys, values = [], [], []
        for r in range(layer.num_relations):
            neighbours = edge_index[0][(edge_index[1] == i) & (edge_type == r)]
            if len(neighbours) == 0:
                continue
            row = layer.relation_rows[r]
            na = x[neighbours].mean(0)  # eq 12
            queries.append(x[i] @ layer.weight_query[row] + layer.bias_query[row])
            keys.append(na @ layer.weight_key[row] + layer.bias_key[row])
            values.append(na @ layer.weight_value[row] + layer.bias_value[row])
        na_bar = x.new_zeros(d)
        if queries:
            q, k, v = torch.stack(queries), torch.stack(keys), torch.stack(values)
            att = torch.softmax(q @ k.T / math.sqrt(d), dim=-1)  # eq 13
            na_bar = (att @ v).mean(0)  # eq 14, averaged over relations
        hidden = F.silu(layer.lin1(x[i]))  # eq 15
        outputs.append(F.silu(layer.lin2(hidden + na_bar)))  # eq 16
    return torch.stack(outputs)


def test_hand_computation_on_two_nodes():
    # d = 2, two relations. Node 0 = [1, 0] receives node 1 under relations 0 and 1;
    # node 1 = [0, 1] receives node 0 under relation 0 only (relation 1 is empty).
    layer = RGCT(2, num_relations=2).double().eval()
    eye = torch.eye(2, dtype=torch.float64)
    swap = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    shear = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    with torch.no_grad():
        layer.weight_query.copy_(torch.stack([eye, swap]))  # Q^0 = n, Q^1 = swap(n)
        layer.weight_key.copy_(torch.stack([eye, 2 * eye]))  # K^0 = NA, K^1 = 2 NA
        layer.weight_value.copy_(torch.stack([eye, shear]))  # V^0 = NA, V^1 = NA @ shear
        for module in (layer.lin1, layer.lin2):
            module.weight.copy_(eye)
        for bias in (layer.bias_query, layer.bias_key, layer.bias_value):
            bias.zero_()
        layer.lin1.bias.zero_()
        layer.lin2.bias.zero_()
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    edge_index = torch.tensor([[1, 1, 0], [0, 0, 1]])
    edge_type = torch.tensor([0, 1, 0])
    out = layer(x, edge_index, edge_type)

    # Node 0: NA^0 = NA^1 = n_1 = [0, 1] (eq 12).
    #   Q^0 = [1, 0], Q^1 = [0, 1]; K^0 = [0, 1], K^1 = [0, 2]; V^0 = [0, 1], V^1 = [1, 1].
    #   Row 0 logits: [0, 0] / sqrt 2 -> Att = [1/2, 1/2].
    #   Row 1 logits: [1, 2] / sqrt 2 -> Att = [1 - p, p], p = sigmoid(1 / sqrt 2) (eq 13).
    #   Att V: row 0 = [1/2, 1], row 1 = [p, 1] (eq 14); average = [(1/2 + p) / 2, 1].
    #   n_hat = Swish([1, 0]) = [sigmoid(1), 0] (eq 15).
    #   n' = Swish([sigmoid(1) + (1/2 + p) / 2, 1]) (eq 16).
    p = torch.sigmoid(torch.tensor(1 / math.sqrt(2), dtype=torch.float64))
    s1 = torch.sigmoid(torch.tensor(1.0, dtype=torch.float64))
    expected_0 = F.silu(torch.stack([s1 + (0.5 + p) / 2, torch.ones_like(p)]))
    # Node 1: only relation 0 is non-empty: NA^0 = n_0 = [1, 0], one key, Att = [1],
    #   average over the one present relation = V^0 = [1, 0]. Relation 1 adds nothing.
    #   n_hat = Swish([0, 1]) = [0, sigmoid(1)]; n' = Swish([1, sigmoid(1)]).
    expected_1 = F.silu(torch.stack([torch.ones_like(s1), s1]))
    assert torch.allclose(out, torch.stack([expected_0, expected_1]), atol=1e-12)


@pytest.mark.parametrize(("pairs", "singles"), [(0, 2), (2, 0), (1, 1)])
def test_float64_matches_a_float64_loop_reference(pairs, singles):
    # rtol=0: an attention computed in float32 inside a float64 run errs by about 1e-7
    # (the downcast of issue 30), far above 1e-12
    layer = _layer(16)
    T = 3
    audio, visual = _streams(2 * pairs + singles, T, 16)
    x = streams_to_nodes(audio, visual)  # (N, D)
    edge_index, edge_type = replica_batch_graph(pairs, singles, T)  # pairs: linked graph
    reference = _reference(layer, x, edge_index, edge_type)  # (N, D)
    out = layer(x, edge_index, edge_type)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, reference, rtol=0, atol=1e-12)
    dense = streams_to_nodes(*layer.forward_dense(audio, visual, pairs))  # (N, D)
    torch.testing.assert_close(dense, reference, rtol=0, atol=1e-12)


def test_attention_upcasts_low_precision_and_never_downcasts():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 8, dtype=torch.float64) for _ in range(3))  # (B, S, D)
    present = torch.tensor([[True, True, False], [True, True, True]])  # (B, S)
    exact = _attend(q, k, v, present)  # (B, D)
    assert exact.dtype == torch.float64
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), dim=-1)  # (B, S, S)
    weights = weights.masked_fill(~present.unsqueeze(-2), 0)
    weights = weights / weights.sum(-1, keepdim=True)  # softmax over the present keys
    rows = present.double() / present.sum(-1, keepdim=True)  # (B, S): mean of present rows
    expected = torch.einsum("bs,bst,btd->bd", rows, weights, v)  # (B, D), eqs 13-14
    torch.testing.assert_close(exact, expected, rtol=0, atol=1e-14)
    # fp16 and bf16 inputs are attended in float32 and returned in their own dtype
    for low in (torch.float16, torch.bfloat16):
        out = _attend(q.to(low), k.to(low), v.to(low), present)
        assert out.dtype == low
        high = _attend(*(t.to(low).float() for t in (q, k, v)), present)
        torch.testing.assert_close(out, high.to(low), rtol=0, atol=0)


@pytest.mark.parametrize("T", [10, 3, 2, 1])
@pytest.mark.parametrize("B", [1, 4])
def test_dense_path_equals_message_passing_float64(B, T):
    layer = _layer(8)
    audio, visual = _streams(B, T, 8)
    dense_audio, dense_visual = layer.forward_dense(audio, visual)
    assert dense_audio.shape == dense_visual.shape == (B, T, 8)
    nodes = layer(streams_to_nodes(audio, visual), *video_graph(B, T))
    graph_audio, graph_visual = nodes_to_streams(nodes, T)
    assert torch.allclose(dense_audio, graph_audio, rtol=0, atol=1e-12)
    assert torch.allclose(dense_visual, graph_visual, rtol=0, atol=1e-12)

    weights = torch.randn(2, B, T, 8, dtype=torch.float64)
    params = [audio, visual, *layer.parameters()]
    loss = (weights[0] * dense_audio + weights[1] * dense_visual).sum()
    dense_grads = torch.autograd.grad(loss, params)
    loss = (weights[0] * graph_audio + weights[1] * graph_visual).sum()
    graph_grads = torch.autograd.grad(loss, params)
    for dense_grad, graph_grad in zip(dense_grads, graph_grads, strict=True):
        assert torch.allclose(dense_grad, graph_grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("pairs", "singles", "T"), [(1, 0, 10), (3, 2, 10), (2, 1, 2), (1, 1, 1)])
def test_dense_linked_path_equals_message_passing_on_the_linked_graph(pairs, singles, T):
    layer = _layer(8)
    audio, visual = _streams(2 * pairs + singles, T, 8)
    dense = torch.cat(layer.forward_dense(audio, visual, pairs))
    nodes = layer(streams_to_nodes(audio, visual), *replica_batch_graph(pairs, singles, T))
    assert torch.allclose(dense, torch.cat(nodes_to_streams(nodes, T)), rtol=0, atol=1e-12)
    if pairs:  # linking changes the originals' update
        assert not torch.allclose(dense, torch.cat(layer.forward_dense(audio, visual)))
    with pytest.raises(PipelineError, match="pairs"):
        layer.forward_dense(audio, visual, pairs + singles + 1)


@pytest.mark.parametrize(("B", "T"), [(1, 10), (4, 10), (1, 3), (4, 3)])
def test_dense_path_equals_message_passing_float32(B, T):
    layer = _layer(32, dtype=torch.float32)
    audio, visual = _streams(B, T, 32, dtype=torch.float32)
    dense = torch.cat(layer.forward_dense(audio, visual))
    nodes = layer(streams_to_nodes(audio, visual), *video_graph(B, T))
    graph = torch.cat(nodes_to_streams(nodes, T))
    assert torch.allclose(dense, graph, rtol=0, atol=1e-5)
    params = [audio, visual, *layer.parameters()]
    dense_grads = torch.autograd.grad(dense.square().sum(), params)
    graph_grads = torch.autograd.grad(graph.square().sum(), params)
    for dense_grad, graph_grad in zip(dense_grads, graph_grads, strict=True):
        assert torch.allclose(dense_grad, graph_grad, rtol=1e-4, atol=1e-5)


def _perturb_relations(layer: RGCT, names: list[str]) -> None:
    """Add noise to every query, key and value parameter of the named relations."""
    with torch.no_grad():
        for name in names:
            row = layer.relation_rows[RELATIONS.index(name)]
            for kind in ("query", "key", "value"):
                for prefix in ("weight", "bias"):
                    tensor = getattr(layer, f"{prefix}_{kind}")[row]
                    tensor.add_(torch.randn_like(tensor))


def test_empty_relations_contribute_nothing():
    layer = _layer(8)
    T = 3
    x = torch.randn(2 * T, 8, dtype=torch.float64)
    graph = video_graph(1, T)
    before = layer(x, *graph)
    audio = slice(0, T)
    # No audio node has an in-neighbour under a relation that enters visual nodes: the
    # parameters of those relations (biases included) cannot reach audio nodes.
    _perturb_relations(layer, ["visual_forward", "visual_backward", "audio_to_visual"])
    after = layer(x, *graph)
    assert torch.equal(after[audio], before[audio])
    assert not torch.allclose(after[T:], before[T:])
    # The first audio segment has no forward neighbour, the last no backward one.
    before = after
    _perturb_relations(layer, ["audio_forward"])
    after = layer(x, *graph)
    assert torch.equal(after[0], before[0])
    assert not torch.allclose(after[1:T], before[1:T])
    before = after
    _perturb_relations(layer, ["audio_backward"])
    after = layer(x, *graph)
    assert torch.equal(after[T - 1], before[T - 1])
    assert not torch.allclose(after[: T - 1], before[: T - 1])


def test_single_relation_node_gets_that_relations_value():
    # With one non-empty relation the softmax has one key: the aggregate is its value,
    # whatever the queries are (T = 1: each node has only its cross-modal twin).
    layer = _layer(4)
    x = torch.randn(2, 4, dtype=torch.float64)
    out = layer(x, *video_graph(1, 1))
    row = layer.relation_rows[RELATIONS.index("visual_to_audio")]
    value = x[1] @ layer.weight_value[row] + layer.bias_value[row]
    expected = F.silu(layer.lin2(F.silu(layer.lin1(x[0])) + value))
    assert torch.allclose(out[0], expected, atol=1e-12)


def test_isolated_nodes_get_a_finite_update():
    layer = _layer(4)
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    edge_index = torch.tensor([[1], [0]])  # only node 0 has a neighbour
    edge_type = torch.tensor([5])
    out = layer(x, edge_index, edge_type)
    expected = F.silu(layer.lin2(F.silu(layer.lin1(x[1:]))))  # NA_att = 0
    assert torch.allclose(out[1:], expected, atol=1e-12)
    out = layer(x, torch.empty(2, 0, dtype=torch.long), torch.empty(0, dtype=torch.long))
    assert torch.allclose(out, F.silu(layer.lin2(F.silu(layer.lin1(x)))), atol=1e-12)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)


def test_node_permutation_equivariance():
    layer = _layer(5)
    x = torch.randn(2 * 2 * 4, 5, dtype=torch.float64)
    edge_index, edge_type = linked_graph(1, 4)
    perm = torch.randperm(x.size(0))
    inverse = torch.argsort(perm)  # new id of old node i
    out = layer(x[perm], inverse[edge_index], edge_type)
    assert torch.allclose(out, layer(x, edge_index, edge_type)[perm], atol=1e-12)


def test_dropout_only_in_train_mode():
    torch.manual_seed(0)
    layer = RGCT(16, dropout=0.5).double()
    plain = RGCT(16).double()
    plain.load_state_dict(layer.state_dict())
    plain.eval()
    audio, visual = _streams(2, 5, 16)
    reference = torch.cat(plain.forward_dense(audio, visual))
    layer.train()
    first = torch.cat(layer.forward_dense(audio, visual))
    second = torch.cat(layer.forward_dense(audio, visual))
    assert not torch.allclose(first, second)
    assert not torch.allclose(first, reference)
    graph = video_graph(2, 5)
    nodes = streams_to_nodes(audio, visual)
    assert not torch.allclose(layer(nodes, *graph), plain(nodes, *graph))
    layer.eval()
    assert torch.equal(torch.cat(layer.forward_dense(audio, visual)), reference)
    assert torch.allclose(layer(nodes, *graph), plain(nodes, *graph), atol=1e-12)


def test_every_parameter_gets_a_finite_gradient():
    torch.manual_seed(0)
    layer = RGCT(8, dropout=0.2).train()
    audio, visual = _streams(3, 10, 8, dtype=torch.float32)
    out_audio, out_visual = layer.forward_dense(audio, visual)
    (out_audio.square().sum() + out_visual.sum()).backward()
    for name, param in layer.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_relation_rows_group_the_video_relations_by_receiving_modality():
    rows = RGCT(4).relation_rows.tolist()
    by_row = [RELATIONS[rows.index(row)] for row in range(6)]
    assert by_row == [
        "audio_forward",
        "audio_backward",
        "visual_to_audio",
        "visual_forward",
        "visual_backward",
        "audio_to_visual",
    ]
    assert RGCT(4, num_relations=3).relation_rows.tolist() == [0, 1, 2]
    assert "relation_rows" not in RGCT(4).state_dict()


def test_bad_arguments_raise_pipeline_errors():
    for kwargs, message in [
        ({"channels": 0}, "channels"),
        ({"channels": 4, "num_relations": True}, "num_relations"),
        ({"channels": 4, "dropout": 1.0}, "dropout"),
    ]:
        with pytest.raises(PipelineError, match=message):
            RGCT(**kwargs)
    layer = RGCT(4)
    graph = video_graph(1, 2)
    with pytest.raises(PipelineError, match="nodes"):
        layer(torch.zeros(4, 3), *graph)
    with pytest.raises(PipelineError, match="edge_type"):
        layer(torch.zeros(4, 4), graph[0], graph[1] + 6)
    with pytest.raises(PipelineError, match="audio and visual"):
        layer.forward_dense(torch.zeros(1, 2, 4), torch.zeros(1, 3, 4))
    with pytest.raises(PipelineError, match="num_relations = 2"):
        RGCT(4, num_relations=2).forward_dense(torch.zeros(1, 2, 4), torch.zeros(1, 2, 4))
