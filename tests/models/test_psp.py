"""Tests of PSP (Zhou et al., CVPR 2021): propagation, AVPS loss, weak head, shapes."""

import math

import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.losses import sel_loss, video_labels_from_segments
from pipeline.models.psp import (
    PSP,
    PositiveSamplePropagation,
    avps_loss,
    avps_target,
    propagation_matrices,
)
from tests.models.chain import run_chain, tiny_params

# Small dims: 6-d audio, 2x2 maps of 8 channels, 5 classes (index 4 = background).
SMALL = {
    "audio_dim": 6,
    "visual_dim": 8,
    "n_regions": 4,
    "n_classes": 5,
    "hidden": 4,
    "embed_hidden": 5,
    "attention_hidden": 6,
    "attention_dim": 3,
    "classifier_hidden": 5,
}
B, T = 3, 10
LABELS = torch.tensor([[4] * 3 + [1] * 7, [4] * 10, [2] * 5 + [0] * 5])  # (B, T)


@pytest.fixture
def model() -> PSP:
    torch.manual_seed(0)
    return PSP(**SMALL)


@pytest.fixture
def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    audio = torch.randn(B, T, 6, generator=generator)
    visual = torch.rand(B, T, 2, 2, 8, generator=generator)
    return audio, visual


BETA = torch.tensor([[[1.0, 2.0, 7.0], [0.0, 0.0, 0.0], [3.0, 3.0, 4.0]]])  # (1, 3, 3)


def test_pairs_at_or_below_the_threshold_get_no_weight_and_rows_sum_to_one() -> None:
    gamma_va, _ = propagation_matrices(BETA, threshold=0.25)
    # row 0: [0.1, 0.2, 0.7] -> only 0.7 survives -> [0, 0, 1]; row 1: nothing to propagate;
    # row 2: [0.3, 0.3, 0.4], all above 0.25, unchanged.
    expected = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.3, 0.3, 0.4]]])
    assert torch.allclose(gamma_va, expected, atol=1e-6)
    assert torch.allclose(gamma_va.sum(-1), torch.tensor([[1.0, 0.0, 1.0]]), atol=1e-6)


def test_the_other_direction_is_the_transpose_normalised() -> None:
    _, gamma_av = propagation_matrices(BETA, threshold=0.25)
    # beta^T rows: [1, 0, 3] -> [.25, 0, .75] -> [0, 0, 1]; [2, 0, 3] -> [.4, 0, .6];
    # [7, 0, 4] -> [7/11, 0, 4/11]: all kept.
    expected = torch.tensor([[[0.0, 0.0, 1.0], [0.4, 0.0, 0.6], [7 / 11, 0.0, 4 / 11]]])
    assert torch.allclose(gamma_av, expected, atol=1e-6)
    # Without pruning, gamma_av is gamma_va's un-normalised transpose, row-normalised.
    gamma_va, gamma_av = propagation_matrices(BETA, threshold=0.0)
    unnormalised = gamma_va * BETA.sum(-1, keepdim=True)  # back to beta
    transposed = unnormalised.transpose(1, 2)
    assert torch.allclose(gamma_av, transposed / transposed.sum(-1, keepdim=True), atol=1e-6)


def test_without_renormalisation_the_pruned_rows_keep_their_values() -> None:
    gamma_va, _ = propagation_matrices(BETA, threshold=0.25, renormalise=False)
    expected = torch.tensor([[[0.0, 0.0, 0.7], [0.0, 0.0, 0.0], [0.3, 0.3, 0.4]]])
    assert torch.allclose(gamma_va, expected, atol=1e-6)


def test_psp_module_matches_the_equations_by_hand() -> None:
    # d = 2, every W the identity, no dropout: phi = ReLU.
    module = PositiveSamplePropagation(dim=2, threshold=0.3, dropout=0.0)
    with torch.no_grad():
        for name in ("v_1", "v_2", "v_3", "a_1", "a_2", "a_3"):
            getattr(module, name).weight.copy_(torch.eye(2))
    visual = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # (1, T=2, 2)
    audio = torch.tensor([[[3.0, 0.0], [1.0, 1.0]]])  # (1, 2, 2)
    # beta^va = relu(v a^T / sqrt 2) = [[3, 1], [0, 2]] / sqrt 2
    # rows normalised: [.75, .25] -> pruned at .3 -> [1, 0]; [0, 1] -> [0, 1]
    # beta^av = [[3, 0], [1, 2]] / sqrt 2 -> [1, 0]; [1/3, 2/3] -> both kept
    v_psp_raw = visual + torch.tensor([[[3.0, 0.0], [1.0, 1.0]]])  # v + gamma_va a
    a_psp_raw = audio + torch.tensor([[[1.0, 0.0], [1 / 3, 4 / 3]]])  # a + gamma_av v
    norm = torch.nn.functional.layer_norm
    v_psp, a_psp = module(audio, visual)
    assert torch.allclose(v_psp, norm(v_psp_raw, (2,), eps=1e-6), atol=1e-5)
    assert torch.allclose(a_psp, norm(a_psp_raw, (2,), eps=1e-6), atol=1e-5)


def test_weak_psp_module_neither_renormalises_nor_has_w3() -> None:
    module = PositiveSamplePropagation(dim=2, threshold=0.3, dropout=0.0, weak=True)
    with torch.no_grad():
        for name in ("v_1", "v_2", "a_1", "a_2"):
            getattr(module, name).weight.copy_(torch.eye(2))
    assert not any("_3" in name for name, _ in module.named_parameters())
    visual = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    audio = torch.tensor([[[3.0, 0.0], [1.0, 1.0]]])
    # gamma^va rows [.75, .25] -> pruned, not renormalised: [.75, 0]; [0, 1] stays
    # gamma^av rows [1, 0] and [1/3, 2/3] stay
    v_res = visual + torch.tensor([[[0.75 * 3.0, 0.0], [1.0, 1.0]]])
    a_res = audio + torch.tensor([[[1.0, 0.0], [1 / 3, 4 / 3]]])
    norm = torch.nn.functional.layer_norm
    v_psp, a_psp = module(audio, visual)
    assert torch.allclose(v_psp, norm(v_res, (2,), eps=1e-6), atol=1e-5)
    assert torch.allclose(a_psp, norm(a_res, (2,), eps=1e-6), atol=1e-5)


def test_weak_network_is_the_official_weakly_supervised_one(inputs) -> None:
    torch.manual_seed(0)
    model = PSP(**SMALL, psp_network="weak")
    assert isinstance(model.audio_encoder, torch.nn.Identity)
    assert (
        isinstance(model.visual_encoder, torch.nn.Linear) and model.visual_encoder.bias is not None
    )
    assert model.lstm_a.input_size == 6  # the raw audio
    scores = model(*inputs)
    assert scores.shape == (B, T, 5)
    labels = video_labels_from_segments(LABELS, n_classes=5, background=4)
    model.wsel_loss(scores, labels).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


def test_avps_target_spreads_one_over_the_events_segments() -> None:
    labels = torch.tensor([[4, 4, 3, 3, 3, 4], [4] * 6, [2, 2, 3, 3, 4, 4]])
    target = avps_target(labels, background=4)
    expected = torch.tensor(
        [
            [0, 0, 1 / 3, 1 / 3, 1 / 3, 0],
            [1 / 6] * 6,  # no event: the background segments, as the official code does
            [0.5, 0.5, 0, 0, 0, 0],  # two events: the lowest-numbered one
        ]
    )
    assert torch.allclose(target, expected)


def test_avps_loss_by_hand() -> None:
    visual = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (1, 2, 2)
    audio = torch.tensor([[[2.0, 0.0], [0.0, -1.0]]])
    # cos = [1, -1] -> relu [1, 0] -> normalised [1, 0]; target [.5, .5]: MSE = .25
    loss = avps_loss(visual, audio, torch.tensor([[0.5, 0.5]]))
    assert loss.item() == pytest.approx(0.25)
    assert avps_loss(visual, audio, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.0)


def test_feature_loss_is_the_weighted_avps_loss(model, inputs) -> None:
    model.eval()
    scores, features = model(*inputs, return_features=True)
    assert scores.shape == (B, T, 5)
    assert features.shape == (B, T, 16)  # [v_psp; a_psp], 2 hidden each
    expected = avps_loss(features[..., :8], features[..., 8:], avps_target(LABELS, 4))
    assert model.feature_loss(features, LABELS).item() == pytest.approx(100 * expected.item())


def test_weak_video_prediction_by_hand(model) -> None:
    with torch.no_grad():
        model.weighting.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0]]))
    scores = torch.tensor([[[2.0, 0, 0, 0, 0], [-1.0, 3, 0, 0, 0]]])  # (1, T=2, 5)
    # w = sigmoid(relu(x_t W)) = [sigmoid(2), sigmoid(0) = .5]
    s2 = 1 / (1 + math.exp(-2))
    pooled = [(2 * s2 - 0.5) / 2, 1.5 / 2, 0.0, 0.0, 0.0]
    expected = torch.softmax(torch.tensor(pooled), dim=0)
    assert torch.allclose(model.video_probabilities(scores)[0], expected, atol=1e-6)


def test_weak_loss_by_hand(model) -> None:
    with torch.no_grad():
        model.weighting.weight.zero_()  # w_t = 1/2
    scores = torch.zeros(1, 2, 5)
    scores[0, :, 1] = 2 * math.log(4.0)  # pooled logits [0, log 4, 0, 0, 0] -> p_1 = 1/2
    p = torch.tensor([1 / 8, 1 / 2, 1 / 8, 1 / 8, 1 / 8])
    labels = torch.tensor([[0.0, 1.0, 0.0, 0.0, 1.0]])  # two classes: target 1/2 each
    target = torch.tensor([0.0, 0.5, 0.0, 0.0, 0.5])
    expected = -(target * p.log() + (1 - target) * (1 - p).log()).mean()
    assert model.wsel_loss(scores, labels).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(PipelineError, match="at least one class per video"):
        model.wsel_loss(scores, torch.zeros(1, 5))
    with pytest.raises(PipelineError, match=r"expected shape \(1, 5\), found \(1, 4\)"):
        model.wsel_loss(scores, torch.ones(1, 4))


def test_weighting_never_changes_a_segments_class(model, inputs) -> None:
    scores = model(*inputs)
    weighted = model.segment_weights(scores) * scores
    assert torch.equal(weighted.argmax(-1), scores.argmax(-1))


def test_default_dims_take_7x7x512_maps() -> None:
    torch.manual_seed(0)
    scores = PSP()(torch.randn(2, T, 128), torch.rand(2, T, 7, 7, 512))
    assert scores.shape == (2, T, 29)
    assert PSP.needs_maps


def test_attention_sums_to_one_and_depends_on_audio(model, inputs) -> None:
    audio, visual = inputs
    encoded = model.audio_encoder(audio)
    alpha = model.attention.weights(encoded, visual.flatten(2, 3))
    assert alpha.shape == (B, T, 4)
    assert torch.allclose(alpha.sum(-1), torch.ones(B, T))
    assert not torch.allclose(alpha, model.attention.weights(encoded + 1, visual.flatten(2, 3)))


@pytest.mark.parametrize("setting", ["sel", "wsel"])
def test_every_used_parameter_gets_a_finite_gradient(model, inputs, setting) -> None:
    if setting == "sel":
        scores, features = model(*inputs, return_features=True)
        (sel_loss(scores, LABELS) + model.feature_loss(features, LABELS)).backward()
        unused = {"weighting.weight"}  # the WSEL branch
    else:
        scores = model(*inputs)
        labels = video_labels_from_segments(LABELS, n_classes=5, background=4)
        model.wsel_loss(scores, labels).backward()
        unused = set()
    for name, parameter in model.named_parameters():
        if name in unused:
            assert parameter.grad is None, name
            continue
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name


@pytest.mark.parametrize(
    ("audio_shape", "visual_shape", "match"),
    [
        ((B, T, 7), (B, T, 2, 2, 8), r"PSP audio: expected shape \(B, T, 6\)"),
        ((B, T, 6), (B, T, 3, 3, 8), r"PSP visual: expected .*H\*W = 4"),
        ((B, T, 6), (B, 5, 4, 8), r"PSP audio and visual: .*\(3, 10\) and \(3, 5\)"),
    ],
)
def test_bad_shapes_raise_pipeline_error(model, audio_shape, visual_shape, match) -> None:
    with pytest.raises(PipelineError, match=match):
        model(torch.zeros(audio_shape), torch.zeros(visual_shape))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden": 0}, "hidden: expected an integer >= 1, found 0"),
        ({"psp_threshold": 1.5}, r"psp_threshold: expected a number in \[0, 1\)"),
        ({"avps_weight": -1.0}, "avps_weight: expected a number >= 0, found -1.0"),
        ({"dropout": 1.0}, r"dropout: expected a number in \[0, 1\)"),
        ({"psp_network": "weakly"}, "psp_network: expected 'full' or 'weak', found 'weakly'"),
    ],
)
def test_bad_hyperparameters_raise_pipeline_error(kwargs, match) -> None:
    with pytest.raises(PipelineError, match=match):
        PSP(**kwargs)


def test_psp_runs_through_train_evaluate_refine_and_retrain(tiny_store, tmp_path, monkeypatch):
    tiny = {"hidden": 4, "embed_hidden": 4, "attention_hidden": 4, "attention_dim": 3}
    params = tiny_params("psp", {**tiny, "classifier_hidden": 4, "dropout": 0.1})
    run_chain(tiny_store, tmp_path, monkeypatch, params)


@pytest.mark.parametrize("setting", ["sel", "wsel"])
def test_a_few_steps_fit_one_batch(inputs, setting) -> None:
    torch.manual_seed(0)
    model = PSP(**SMALL, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    weak = video_labels_from_segments(LABELS, n_classes=5, background=4)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        if setting == "sel":
            scores, features = model(*inputs, return_features=True)
            loss = sel_loss(scores, LABELS) + model.feature_loss(features, LABELS)
        else:
            loss = model.wsel_loss(model(*inputs), weak)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_weak_loss_keeps_float64_and_upcasts_half_precisions(model) -> None:
    # In float64 the loss is the float64 formula (casting to float32 errs by ~1e-8).
    generator = torch.Generator().manual_seed(2)
    model = model.double()
    scores = torch.randn(B, T, 5, generator=generator, dtype=torch.float64)
    labels = torch.tensor(
        [[0.0, 1, 0, 0, 1], [0, 0, 1, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.float64
    )
    p = model.video_probabilities(scores).clamp(1e-8, 1 - 1e-8)
    target = labels / labels.sum(-1, keepdim=True)
    expected = -(target * p.log() + (1 - target) * (1 - p).log()).mean()
    loss = model.wsel_loss(scores, labels)
    assert loss.dtype == torch.float64
    assert abs(loss.item() - expected.item()) < 1e-14
    model = model.to(torch.bfloat16)
    half = model.wsel_loss(scores.to(torch.bfloat16), labels.to(torch.bfloat16))
    assert half.dtype == torch.float32 and torch.isfinite(half)


def reference_attention_weights(attention, audio, regions):
    """The audio-guided attention composed from PyTorch layers (the code before row blocks)."""
    z = attention.w_v(attention.u_v(regions)) + attention.w_g(attention.u_a(audio)).unsqueeze(-1)
    return torch.softmax(attention.w_h(torch.tanh(z)).squeeze(-1), dim=-1)  # (B, T, R)


@pytest.mark.parametrize("network", ["full", "weak"])
def test_row_blocks_equal_the_composed_layers_in_float64(inputs, monkeypatch, network) -> None:
    # Outputs, AVPS loss and every gradient of the model with its attention in row blocks
    # (several blocks: 30 regions' rows at 8 a block) against the composed layers, on the
    # same weights, in training mode (the same dropout draws).
    monkeypatch.setattr("pipeline.models.map_layers.ROW_BLOCK", 8)
    torch.manual_seed(0)
    model = PSP(**SMALL, psp_network=network).double()
    reference = PSP(**SMALL, psp_network=network).double()
    reference.load_state_dict(model.state_dict())
    reference.attention.weights = lambda audio, regions: reference_attention_weights(
        reference.attention, audio, regions
    )
    audio, visual = (x.double() for x in inputs)
    results = []
    for net in (model, reference):
        torch.manual_seed(3)
        scores, features = net(audio, visual, return_features=True)
        loss = sel_loss(scores, LABELS) + net.feature_loss(features, LABELS)
        loss.backward()
        results.append((scores, features, loss, [p.grad for p in net.parameters()]))
    (scores, features, loss, grads), (ref_scores, ref_features, ref_loss, ref_grads) = results
    assert torch.allclose(scores, ref_scores, rtol=0, atol=1e-9)
    assert torch.allclose(features, ref_features, rtol=0, atol=1e-9)
    assert abs(loss.item() - ref_loss.item()) < 1e-9
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        assert (grad is None) == (ref_grad is None)
        if grad is not None:
            assert torch.allclose(grad, ref_grad, rtol=0, atol=1e-9)
