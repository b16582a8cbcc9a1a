"""Tests of EDRNet (seed 002 eqs 1-7, Table 4, §"EDRNet Configurations")."""

import math

import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.losses import land_shore_sea_loss, sel_loss, video_labels_from_segments
from pipeline.models import MODELS, build_model, declarations, model_arguments
from pipeline.models.edrnet import (
    EDRNet,
    Recomposition,
    TemporalGate,
    max_layers,
    positional_encoding,
)

# Small dims: 6-d audio, 2x2 maps of 8 channels, width 8; the 29 AVE classes.
SMALL = {"audio_dim": 6, "visual_dim": 8, "hidden": 8}
B, T, C = 2, 10, 29
CONFIGS = [(k, layers) for k in range(2, 6) for layers in range(1, max_layers(k) + 1)]
LABELS = torch.tensor([[28] * 3 + [1] * 7, [2] * 5 + [28] * 5])  # (B, T)
# Table 4: active DC branches -> evaluated RC outputs.
TABLE_4 = [
    (["a"], ("a",)),
    (["v"], ("v",)),
    (["a", "av"], ("a",)),
    (["v", "av"], ("v",)),
    (["a", "v"], ("a", "v", "gated")),
    (["a", "v", "av"], ("a", "v", "gated")),
]


def make(**overrides: object) -> EDRNet:
    torch.manual_seed(0)
    return EDRNet(**{**SMALL, **overrides})


def inputs(batch: int = B) -> tuple[torch.Tensor, torch.Tensor]:
    """Audio ``(batch, T, 6)`` and visual maps ``(batch, T, 2, 2, 8)``."""
    generator = torch.Generator().manual_seed(1)
    audio = torch.randn(batch, T, 6, generator=generator)
    visual = torch.rand(batch, T, 2, 2, 8, generator=generator)  # non-negative, like pool5
    return audio, visual


def test_max_layers_match_the_paper() -> None:
    assert [max_layers(k) for k in range(2, 6)] == [9, 4, 3, 2]  # L_max^{k=2,3,4,5}


@pytest.mark.parametrize(("kernel", "layers"), CONFIGS)
def test_sequence_lengths_through_decomposition_and_recomposition(kernel, layers) -> None:
    model = make(kernel=kernel, layers=layers)
    audio, visual = inputs()
    branch_inputs = model._branch_inputs(audio, visual, ("a", "v", "av"))
    decomposed = {name: model.decompose[name](x) for name, x in branch_inputs.items()}
    for outputs in decomposed.values():
        lengths = [d.shape[-1] for d in outputs]  # (B, d, N_l) each
        assert lengths == [T - level * (kernel - 1) for level in range(1, layers + 1)]
        assert all(d.shape[:2] == (B, 8) for d in outputs)
    recomposed = model.recompose["a"](decomposed["a"], decomposed["av"])
    assert recomposed.shape == (B, T, 8)
    for output in model.outputs:
        assert model(audio, visual, output).shape == (B, T, C)


def test_kernel_3_layers_4_goes_10_8_6_4_2() -> None:
    model = make()
    outputs = model.decompose["av"](torch.zeros(1, T, 14))
    assert [d.shape[-1] for d in outputs] == [8, 6, 4, 2]


@pytest.mark.parametrize(
    ("kernel", "layers", "message"),
    [
        (1, 1, r"model\.kernel: expected an integer in \[2, 5\], found 1"),
        (6, 1, r"model\.kernel: expected an integer in \[2, 5\], found 6"),
        (3.0, 1, r"model\.kernel: expected an integer in \[2, 5\], found 3\.0"),
        (3, 5, r"model\.layers: expected an integer in \[1, 4\] for model\.kernel = 3 .*found 5"),
        (2, 10, r"model\.layers: expected an integer in \[1, 9\] .*found 10"),
        (5, 3, r"model\.layers: expected an integer in \[1, 2\] .*found 3"),
        (4, 0, r"model\.layers: expected an integer in \[1, 3\] .*found 0"),
    ],
)
def test_kernel_and_layers_that_do_not_fit_are_rejected(kernel, layers, message) -> None:
    with pytest.raises(PipelineError, match=message):
        make(kernel=kernel, layers=layers)


def test_positional_encoding_by_hand() -> None:
    # eq 1 with d_b = 4: omega_0 = 1, omega_1 = 10^(-8/4) = 0.01; t = 1, 2.
    expected = [
        [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],
        [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)],
    ]
    assert torch.allclose(positional_encoding(2, 4), torch.tensor(expected))
    # Odd d_b = 3: omega_1 = 10^(-8/3), the last feature is a sine.
    odd = positional_encoding(1, 3)[0]
    assert odd[2].item() == pytest.approx(math.sin(10 ** (-8 / 3)))


def test_positional_encoding_is_added_to_every_branch() -> None:
    model = make()
    audio, visual = inputs()
    branch_inputs = model._branch_inputs(torch.zeros_like(audio), visual, ("a", "v", "av"))
    assert torch.allclose(branch_inputs["a"], positional_encoding(T, 6).expand(B, T, 6))
    pooled = branch_inputs["v"] - positional_encoding(T, 8)  # (B, T, 8)
    fused = torch.cat([torch.zeros(B, T, 6), pooled], dim=-1)  # (B, T, 14)
    assert torch.allclose(branch_inputs["av"], fused + positional_encoding(T, 14), atol=1e-6)


def test_recomposition_adds_the_residuals_of_eq_3_by_hand() -> None:
    # k = 2, d = 1, all-ones kernels, zero bias: F^T(x)[t] = x[t - 1] + x[t].
    layer = Recomposition(hidden=1, kernel=2, layers=2)
    for conv in layer.convs:
        torch.nn.init.ones_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    own = [torch.tensor([[[1.0, 0.0, 0.0]]]), torch.tensor([[[1.0, 2.0]]])]  # D^1, D^2
    fused = [torch.tensor([[[0.0, 0.0, 1.0]]]), torch.tensor([[[0.0, 1.0]]])]  # D_AV^1, ^2
    # R^1 = F^T(D^2 + D_AV^2) = F^T([1, 3]) = [1, 4, 3]
    # R^2 = F^T(R^1 + D^1 + D_AV^1) = F^T([2, 4, 4]) = [2, 6, 8, 4]
    out = layer(own, fused)
    assert out.flatten().tolist() == [2.0, 6.0, 8.0, 4.0]
    assert layer(own, None).flatten().tolist() == [2.0, 5.0, 5.0, 2.0]  # F^T([2, 3, 2])


@pytest.mark.parametrize("kernel", [2, 3, 4, 5])
def test_gate_is_a_convex_combination_of_the_same_length(kernel: int) -> None:
    gate = TemporalGate(hidden=3, kernel=kernel)
    audio, visual = torch.randn(2, T, 3), torch.randn(2, T, 3)
    out = gate(audio, visual)
    assert out.shape == (2, T, 3)
    low, high = torch.minimum(audio, visual), torch.maximum(audio, visual)
    assert ((out >= low - 1e-6) & (out <= high + 1e-6)).all()
    torch.nn.init.zeros_(gate.conv.weight)
    torch.nn.init.zeros_(gate.conv.bias)  # G = 1/2
    assert torch.allclose(gate(audio, visual), (audio + visual) / 2)


@pytest.mark.parametrize(("branches", "outputs"), TABLE_4)
def test_branch_configurations_of_table_4(branches, outputs) -> None:
    model = make(branches=branches)
    assert model.outputs == outputs
    assert set(model.decompose) == set(branches)
    assert set(model.recompose) == {name for name in branches if name != "av"}
    assert (model.gate is None) == (len(outputs) == 1)
    assert (model.visual_conv is None) == (model.visual_norm is None) == (branches == ["a"])
    assert (model.audio_norm is None) == (branches == ["v"])
    audio, visual = inputs()
    assert torch.equal(model(audio, visual), model(audio, visual, outputs[-1]))
    for name in {"a", "v", "gated"} - set(outputs):
        with pytest.raises(PipelineError, match=f"output: expected one of .*found '{name}'"):
            model(audio, visual, name)


def test_the_av_branch_carries_vision_into_the_audio_output() -> None:
    audio, visual = inputs()
    other = visual.flip(0)
    isolated = make(branches=["a"])
    assert torch.equal(isolated(audio, visual), isolated(audio, other))
    fused = make(branches=["a", "av"])
    assert not torch.allclose(fused(audio, visual), fused(audio, other))


@pytest.mark.parametrize("branches", [[], ["av"], ["a", "a"], ["a", "x"], "a", None], ids=str)
def test_bad_branches_are_rejected(branches) -> None:
    with pytest.raises(PipelineError, match=r"model\.branches: expected distinct names"):
        make(branches=branches)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hidden": 0}, r"model\.hidden: expected an integer >= 1, found 0"),
        ({"dropout": 1.0}, r"model\.dropout: expected a number in \[0, 1\)"),
        ({"visual_kernel": 2}, r"model\.visual_kernel: expected 1, 3, 5 or 7, found 2"),
        ({"lss_weight": -1.0}, r"model\.lss_weight: expected a number >= 0, found -1\.0"),
        ({"lss_margin": "1"}, r"model\.lss_margin: expected a number >= 0, found '1'"),
    ],
)
def test_bad_hyperparameters_are_rejected(overrides, message) -> None:
    with pytest.raises(PipelineError, match=message):
        make(**overrides)


def test_bad_inputs_are_user_errors() -> None:
    model = make()
    audio, visual = inputs()
    with pytest.raises(PipelineError, match=r"visual: expected maps of shape"):
        model(audio, visual.mean(dim=(2, 3)))
    with pytest.raises(PipelineError, match=r"audio: expected shape \(B, T, 6\)"):
        model(audio[..., :5], visual)
    with pytest.raises(PipelineError, match=r"expected T >= 9 segments for model.layers .*found 8"):
        model(audio[:, :8], visual[:, :8])


def test_features_are_what_the_classifier_sees() -> None:
    model = make().eval()
    audio, visual = inputs()
    for output in model.outputs:
        scores, features = model(audio, visual, output, return_features=True)
        assert features.shape == (B, T, 8)
        assert torch.allclose(scores, model.classifier(features))
        assert torch.equal(scores, model(audio, visual, output))


def test_feature_loss_weighs_the_terms() -> None:
    model = make(lss_weight=2.0, lss_margin=0.5)
    features = torch.randn(B, T, 8)
    terms = land_shore_sea_loss(features, LABELS, margin=0.5, background=28)
    expected = 2.0 * (terms["land"] + terms["sea"] + terms["shore"])
    assert torch.allclose(model.feature_loss(features, LABELS), expected)


def test_gradients_reach_every_parameter() -> None:
    model = make()
    scores, features = model(*inputs(), return_features=True)
    loss = sel_loss(scores, LABELS) + model.feature_loss(features, LABELS)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_wsel_loss_and_video_probabilities() -> None:
    model = make()
    scores = model(*inputs())
    probabilities = model.video_probabilities(scores)
    assert probabilities.shape == (B, C)
    assert torch.allclose(probabilities.sum(dim=-1), torch.ones(B))
    # eq 7: the mean over time of the segment softmax.
    assert torch.allclose(probabilities, scores.softmax(dim=-1).mean(dim=1), atol=1e-6)
    video_labels = video_labels_from_segments(LABELS)
    loss = model.wsel_loss(scores, video_labels)
    assert torch.isfinite(loss)
    expected = -(video_labels * probabilities.log()).sum(dim=-1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()


def test_dropout_only_in_training_mode() -> None:
    model = make(dropout=0.5)
    audio, visual = inputs()
    assert not torch.allclose(model(audio, visual), model(audio, visual))
    model.eval()
    assert torch.equal(model(audio, visual), model(audio, visual))


def test_parameter_count_by_hand() -> None:
    # d = 4, k = 3, L = 2, d_a = 6, d_v = 8, C = 29.
    model = EDRNet(audio_dim=6, visual_dim=8, hidden=4, kernel=3, layers=2)
    conv2d = 8 * 8 * 9 + 8
    deeper = 4 * 4 * 3 + 4  # every DC layer after the first, and every RC layer
    decomposition = sum(d_b * 4 * 3 + 4 + deeper for d_b in (6, 8, 14))
    recomposition = 2 * 2 * deeper
    gate = 8 * 4 * 3 + 4
    classifier = 4 * 29 + 29
    norms = 2 * 6 + 2 * 8  # LayerNorm gain and bias per modality
    expected = conv2d + decomposition + recomposition + gate + classifier + norms
    assert sum(p.numel() for p in model.parameters()) == expected


def test_registry_builds_edrnet_from_the_flat_model_section() -> None:
    assert MODELS["edrnet"] is EDRNet
    assert EDRNet.needs_maps is True
    assert list(declarations(["edrnet"])["edrnet"]) == [
        "hidden",
        "kernel",
        "dropout",
        "layers",
        "branches",
        "visual_kernel",
        "seg_weight",
        "lss_weight",
        "lss_margin",
    ]
    section = {"hidden": 8, "kernel": 4, "layers": 3, "branches": ["v", "av"], "blocks": 4}
    dims = {"audio_dim": 6, "visual_dim": 8, "n_regions": 4, "n_classes": 29}
    kwargs, ignored = model_arguments("edrnet", section, dims)
    assert ignored == ["blocks"]
    model = build_model("edrnet", **kwargs)
    assert model.outputs == ("v",)
    assert model(*inputs()).shape == (B, T, C)
