"""Tests of DPNet and its Table 3 variants (seed 001 §3.2 eqs 5-11, §4.1 Table 3)."""

import inspect
import math

import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.losses import sel_loss, video_labels_from_segments
from pipeline.models import MODELS
from pipeline.models.dpnet import (
    DPNet,
    DPNetGraphSecond,
    PerspectiveNetwork,
    RGATOnly,
    RGCTOnly,
    TCNOnly,
)
from pipeline.models.dpnet_layers import (
    DPBlock,
    Gate,
    PPBlock,
    RGATStage,
    TemporalConv,
    parameter_count,
    rgat_conv,
)
from pipeline.models.graph import PairedBatch, linked_graph, replica_batch_graph, video_graph

# Small dims: 6-d audio, 2x2 maps of 8 channels, width 16; the 29 AVE classes.
SMALL = {"audio_dim": 6, "visual_dim": 8, "hidden": 16, "blocks": 2, "dropout": 0.0}
B, T, C = 3, 10, 29
DPNET_VARIANTS = {name: cls for name, cls in MODELS.items() if issubclass(cls, PerspectiveNetwork)}
NAMES = list(DPNET_VARIANTS)
GRAPH_NAMES = [name for name in NAMES if name != "tcn"]
SAME_LAYERS_AS_DPNET = ["tcn_rgct", "rgct_tcn", "dpnet_pp", "dpnet_graph_second"]


def make(name: str, **overrides: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return DPNET_VARIANTS[name](**{**SMALL, **overrides})


def inputs(batch: int = B) -> tuple[torch.Tensor, torch.Tensor]:
    """Audio ``(batch, T, 6)`` and visual maps ``(batch, T, 2, 2, 8)``."""
    generator = torch.Generator().manual_seed(1)
    audio = torch.randn(batch, T, 6, generator=generator)
    visual = torch.rand(batch, T, 2, 2, 8, generator=generator)  # non-negative, like pool5
    return audio, visual


def count(model: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


LABELS = torch.tensor([[28] * 3 + [1] * 7, [28] * 10, [2] * 5 + [0] * 5])  # (B, T)


def test_registry_names_share_dpnet_signature() -> None:
    assert set(DPNET_VARIANTS) == {
        "rgat",
        "rgct",
        "tcn",
        "tcn_rgct",
        "rgct_tcn",
        "dpnet_pp",
        "dpnet_graph_second",
        "dpnet",
    }
    assert DPNET_VARIANTS["dpnet"] is DPNet
    expected = inspect.signature(DPNet).parameters
    for cls in DPNET_VARIANTS.values():
        assert inspect.signature(cls).parameters == expected
        assert cls.needs_maps is False


@pytest.mark.parametrize("name", NAMES)
def test_forward_takes_pooled_features_and_maps(name: str) -> None:
    model = make(name).eval()
    audio, maps = inputs()
    scores = model(audio, maps)
    assert scores.shape == (B, T, C)
    assert torch.allclose(scores, model(audio, maps.mean(dim=(2, 3))), atol=1e-6)


@pytest.mark.parametrize("loss", ["sel", "wsel"])
@pytest.mark.parametrize("name", NAMES)
def test_backward_gives_finite_gradients_for_every_parameter(name: str, loss: str) -> None:
    model = make(name, dropout=0.2).train()
    scores = model(*inputs())
    if loss == "sel":
        value = sel_loss(scores, LABELS)
    else:
        value = model.wsel_loss(scores, video_labels_from_segments(LABELS))
    value.backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name
        assert parameter.grad.abs().sum() > 0, parameter_name


@pytest.mark.parametrize("blocks", range(1, 7))
@pytest.mark.parametrize("name", NAMES)
def test_blocks_1_to_6_build_and_run(name: str, blocks: int) -> None:
    model = make(name, blocks=blocks)
    assert model(*inputs()).shape == (B, T, C)


@pytest.mark.parametrize("blocks", range(1, 7))
def test_dpnet_stacks_one_dpblock_per_block(blocks: int) -> None:
    model = make("dpnet", blocks=blocks)
    assert len(model.backbone) == blocks
    assert all(isinstance(stage, DPBlock) for stage in model.backbone)
    assert all(isinstance(stage, PPBlock) for stage in make("dpnet_pp", blocks=blocks).backbone)


def test_graph_first_and_graph_second_differ_with_the_same_weights() -> None:
    first = make("dpnet").eval()
    second = DPNetGraphSecond(**SMALL).eval()
    second.load_state_dict(first.state_dict())  # same layers, same names
    assert count(first) == count(second)
    audio, visual = inputs()
    assert not torch.allclose(first(audio, visual), second(audio, visual), atol=1e-4)
    by_order = DPNet(**SMALL, order="graph_second").eval()
    by_order.load_state_dict(first.state_dict())
    assert torch.equal(by_order(audio, visual), second(audio, visual))


def test_dpnet_graph_second_ignores_order() -> None:
    model = DPNetGraphSecond(**SMALL, order="graph_first")
    assert all(block.order == "graph_second" for block in model.backbone)


@pytest.mark.parametrize("steps", [1, 2, 10])
@pytest.mark.parametrize("kernel", [2, 3, 4, 5])
def test_temporal_conv_keeps_the_length(kernel: int, steps: int) -> None:
    layer = TemporalConv(4, kernel)
    assert layer(torch.randn(2, steps, 4)).shape == (2, steps, 4)


@pytest.mark.parametrize("kernel", [2, 3, 4, 5])
def test_temporal_conv_is_centred(kernel: int) -> None:
    # Output t sees inputs t - k // 2 .. t + (k - 1) // 2: an even kernel leans to the past.
    torch.manual_seed(0)
    layer = TemporalConv(3, kernel)
    stream = torch.randn(1, T, 3, requires_grad=True)
    (grad,) = torch.autograd.grad(layer(stream)[0, 5].sum(), stream)
    seen = grad[0].abs().sum(dim=-1).nonzero().flatten().tolist()
    assert seen == list(range(5 - kernel // 2, 5 + (kernel - 1) // 2 + 1))


def test_temporal_conv_is_swish_of_a_convolution() -> None:
    layer = TemporalConv(1, 3)
    with torch.no_grad():
        layer.conv.weight.copy_(torch.tensor([[[1.0, 2.0, 3.0]]]))  # taps t-1, t, t+1
        layer.conv.bias.fill_(0.5)
    stream = torch.tensor([[[1.0], [2.0], [-1.0]]])  # (1, 3, 1), zero-padded at both ends
    pre = torch.tensor([0 + 2 + 6, 1 + 4 - 3, 2 - 2 + 0]) + 0.5
    assert torch.allclose(layer(stream).flatten(), pre * torch.sigmoid(pre))


@pytest.mark.parametrize("name", GRAPH_NAMES)
def test_dense_and_message_passing_paths_agree(name: str) -> None:
    model = make(name).eval()
    audio, visual = inputs()
    dense = model(audio, visual)
    message_passing = model(audio, visual, graph=video_graph(B, T))
    assert torch.allclose(dense, message_passing, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_linked_graph_over_originals_and_replicas(name: str) -> None:
    model = make(name).eval()
    audio, visual = inputs(2 * B)  # B originals, then their B replicas
    linked = model(audio, visual, graph=linked_graph(B, T))
    assert linked.shape == (2 * B, T, C)
    alone = model(audio, visual)
    # Linking widens the graph neighbourhoods; a TCN-only network has no graph.
    assert torch.allclose(linked, alone, atol=1e-5) == (name == "tcn")


def test_gate_is_a_convex_combination() -> None:
    gate = Gate(4)
    bias = torch.tensor([-2.0, 0.0, 1.0, 30.0])
    with torch.no_grad():
        gate.fc.weight.zero_()
        gate.fc.bias.copy_(bias)  # forced gate: sigma(bias), whatever the input
    audio, visual = torch.randn(2, T, 4), torch.randn(2, T, 4)
    weight = torch.sigmoid(bias)  # [0.119, 0.5, 0.731, ~1]
    assert torch.allclose(gate(audio, visual), weight * audio + (1 - weight) * visual)
    torch.manual_seed(0)
    fused = Gate(4)(audio, visual)  # learned gate: between the two inputs, per element
    assert (fused >= torch.minimum(audio, visual) - 1e-6).all()
    assert (fused <= torch.maximum(audio, visual) + 1e-6).all()


def test_video_probabilities_are_the_mean_segment_softmax() -> None:
    model = make("dpnet")
    scores = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])  # see tests/training/test_losses.py
    assert torch.allclose(model.video_probabilities(scores), torch.tensor([[0.625, 0.375]]))
    probabilities = model.video_probabilities(model(*inputs()))
    assert probabilities.shape == (B, C)
    assert torch.allclose(probabilities.sum(dim=-1), torch.ones(B))


@pytest.mark.parametrize("hidden", [768, 128])
def test_variants_are_similarly_sized(hidden: int) -> None:
    counts = {
        name: parameter_count(lambda cls=cls: cls(hidden=hidden))
        for name, cls in DPNET_VARIANTS.items()
    }
    for name in SAME_LAYERS_AS_DPNET:
        assert counts[name] == counts["dpnet"], name
    for name, count in counts.items():
        assert 0.65 <= count / counts["dpnet"] <= 1.35, (name, counts)


def test_single_perspective_networks_repeat_their_unit_to_dpnet_size() -> None:
    # Paper settings (hidden 768, kernel 3, 4 blocks): DPBlock = RGCT 20(d^2 + d) + two
    # convolutions 2(3d^2 + d) ~ 26 d^2; RGCT ~ 20 d^2; TCN pair ~ 6 d^2; RGAT head ~ 6 d^2.
    with torch.device("meta"):
        rgct, tcn, rgat = RGCTOnly(), TCNOnly(), RGATOnly()
    assert len(rgct.backbone) == 5  # round(4 * 26 / 20)
    assert len(tcn.backbone) == 17  # round(4 * 26 / 6)
    assert len(rgat.backbone) == 4
    assert all(stage.conv.heads == 4 for stage in rgat.backbone)  # round(26 / 6)


@pytest.mark.parametrize("linked", [False, True])
@pytest.mark.parametrize("heads", [1, 3])
def test_rgat_conv_equals_pyg_rgatconv_forward(heads: int, linked: bool) -> None:
    torch.manual_seed(0)
    stage = RGATStage(8, dropout=0.3, heads=heads).eval()
    edge_index, edge_type = (linked_graph if linked else video_graph)(2, 4)
    x = torch.randn(edge_index.max().item() + 1, 8)
    expected = stage.conv(x, edge_index, edge_type)  # PyG's per-edge weight gathering
    assert torch.allclose(rgat_conv(stage.conv, x, edge_index, edge_type), expected, atol=1e-6)


def test_rgat_stage_keeps_only_the_parameters_it_uses() -> None:
    stage = RGATStage(4)
    names = {name for name, _ in stage.named_parameters()}
    assert names == {"conv.weight", "conv.q", "conv.k", "conv.bias"}


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("blocks", 0),
        ("order", "sideways"),
        ("kernel", 1),
        ("hidden", 0),
        ("dropout", 1.0),
        ("blocks", True),
        ("n_classes", 2.5),
    ],
)
@pytest.mark.parametrize("name", NAMES)
def test_bad_constructor_values_name_the_argument(name: str, argument: str, value: object) -> None:
    with pytest.raises(PipelineError, match=rf"{argument}: expected .*found {value!r}"):
        DPNET_VARIANTS[name](**{**SMALL, argument: value})


def test_bad_input_shapes_are_reported() -> None:
    model = make("dpnet")
    audio, maps = inputs()
    with pytest.raises(PipelineError, match="audio: expected shape"):
        model(audio[..., :5], maps)
    with pytest.raises(PipelineError, match="visual: expected shape"):
        model(audio, maps[..., :7])
    with pytest.raises(PipelineError, match="the same"):
        model(audio, maps[:, :9])


def test_he_init_draws_fc_tcn_and_relation_weights_with_variance_two_over_fan_in():
    torch.manual_seed(0)
    model = DPNet(audio_dim=6, visual_dim=8, hidden=256, blocks=2)
    weights = {"audio": (model.audio_proj.weight, 6), "classifier": (model.classifier.weight, 256)}
    for name, (weight, fan_in) in weights.items():
        assert weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.15), name
    relation_weights = [p for n, p in model.named_parameters() if n.endswith("weight_query")]
    assert relation_weights, "DPNet has RGCT relation weights"
    for weight in relation_weights:
        assert weight.std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.05)
    assert all(torch.all(p == 0) for n, p in model.named_parameters() if n.endswith("bias_key"))


@pytest.mark.parametrize("blocks", [4, 6])
def test_signal_reaches_the_classifier_through_deep_stacks(blocks):
    # With PyTorch's default init the per-video differences shrink about 3x per layer;
    # He init keeps the backbone's output sensitive to its input at B = 4 and 6.
    torch.manual_seed(0)
    model = DPNet(audio_dim=6, visual_dim=8, hidden=64, blocks=blocks).eval()
    audio, visual = torch.rand(8, 10, 6), torch.rand(8, 10, 8)
    streams = model.audio_proj(audio), model.visual_proj(visual)
    spread_in = streams[0].std(dim=0).mean()
    for stage in model.backbone:
        streams = stage(*streams)
    spread_out = streams[0].std(dim=0).mean()  # differences between videos
    assert spread_out > 0.2 * spread_in


@pytest.mark.parametrize("name", ["dpnet", "dpnet_pp", "rgat"])
def test_paired_batch_layout_equals_the_explicit_linked_graph(name):
    torch.manual_seed(0)
    model = DPNET_VARIANTS[name](audio_dim=4, visual_dim=6, hidden=8, blocks=2).double().eval()
    audio, visual = torch.randn(5, 10, 4).double(), torch.randn(5, 10, 6).double()
    layout = model(audio, visual, graph=PairedBatch(2, 1))
    edges = model(audio, visual, graph=replica_batch_graph(2, 1, 10))
    assert torch.allclose(layout, edges, rtol=0, atol=1e-10)
    assert not torch.allclose(layout, model(audio, visual))  # the link changes the scores


def pool5_scale_batch(n: int = 96) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Videos of 29 classes whose features have the scale of VGG-19 pool5 (tens and above).

    Each class has a sparse non-negative prototype per modality; a segment is its class's
    prototype times 60 plus non-negative noise (pooled visual values reach about 100, as
    the real pooled maps' largest channels do), background segments only the noise.
    """
    generator = torch.Generator().manual_seed(2)
    protos_a = torch.rand(C, 6, generator=generator) * (torch.rand(C, 6, generator=generator) < 0.5)
    protos_v = torch.rand(C, 8, generator=generator) * (torch.rand(C, 8, generator=generator) < 0.5)
    classes = torch.randint(0, C - 1, (n,), generator=generator)
    labels = classes[:, None].repeat(1, T)  # (n, T)
    labels[: n // 3, :3] = C - 1  # a background head on a third of the videos
    audio = 60 * protos_a[labels] + 10 * torch.rand(n, T, 6, generator=generator)  # (n, T, 6)
    visual = 60 * protos_v[labels] + 10 * torch.rand(n, T, 8, generator=generator)  # (n, T, 8)
    return audio, visual, labels


def test_dpnet_is_invariant_to_the_input_scale() -> None:
    model = make("dpnet").eval()
    audio, visual = inputs()
    audio = audio.abs() * 20  # at unit scale LayerNorm's eps (1e-5) is not negligible
    scaled = model(10 * audio, 10 * visual)
    assert torch.allclose(scaled, model(audio, 20 * visual), atol=1e-3)  # scales differ too
    assert torch.allclose(model(audio, 20 * visual), model(audio, 30 * visual), atol=1e-3)


def test_dpnet_trains_at_vgg_pool5_scale() -> None:
    # issue 28: without input normalisation the first losses are above 100 and DPNet
    # stays near chance on such features (measured: first epoch 127, sixth 52, accuracy 10 %;
    # with it 3.3, 1.25 and 76 %)
    audio, visual, labels = pool5_scale_batch()
    assert audio.max() > 30 and visual.max() > 30
    model = make("dpnet", hidden=32).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):  # epochs of 6 batches of 16
        for batch in torch.arange(len(labels)).split(16):
            loss = sel_loss(model(audio[batch], visual[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert losses[0] < 2 * math.log(C)  # no blow-up at the start
    assert sum(losses[-6:]) / 6 < 0.5 * sum(losses[:6]) / 6
    model.eval()
    with torch.no_grad():
        accuracy = (model(audio, visual).argmax(-1) == labels).float().mean().item()
    assert accuracy > 5 / C  # chance is 1 / 29


def test_input_norm_gives_zero_mean_unit_norm_rows() -> None:
    from pipeline.models.dpnet import InputNorm

    x = 40 * torch.rand(5, 10, 512)
    y = InputNorm(512)(x)  # (5, 10, 512)
    assert torch.allclose(y.mean(-1), torch.zeros(5, 10), atol=1e-5)
    assert torch.allclose(y.norm(dim=-1), torch.ones(5, 10), atol=1e-3)
