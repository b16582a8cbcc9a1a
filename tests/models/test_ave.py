"""Tests of the AVE baseline (seed 004 §4.1 eqs 1-5) and the model registry."""

import math

import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.losses import mil_loss, sel_loss, video_labels_from_segments
from pipeline.models import MODELS, build_model, declarations, model_class
from pipeline.models.ave import VARIANTS, AVEBaseline

# Small dims: 6-d audio, 2x2 maps of 8 channels, 5 classes (index 4 = background).
SMALL = {
    "audio_dim": 6,
    "visual_dim": 8,
    "n_regions": 4,
    "n_classes": 5,
    "hidden": 4,
    "attention_dim": 3,
    "classifier_hidden": 5,
}
B, T = 3, 10


@pytest.fixture
def model() -> AVEBaseline:
    torch.manual_seed(0)
    return AVEBaseline(**SMALL)


@pytest.fixture
def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Audio ``(B, T, 6)`` and visual maps ``(B, T, 2, 2, 8)``."""
    generator = torch.Generator().manual_seed(1)
    audio = torch.randn(B, T, 6, generator=generator)
    visual = torch.rand(B, T, 2, 2, 8, generator=generator)  # non-negative, like pool5
    return audio, visual


def test_default_dims_take_7x7x512_maps() -> None:
    torch.manual_seed(0)
    scores = AVEBaseline()(torch.randn(2, T, 128), torch.rand(2, T, 7, 7, 512))
    assert scores.shape == (2, T, 29)
    assert AVEBaseline.needs_maps


def test_maps_and_flat_regions_give_the_same_scores(model, inputs) -> None:
    audio, visual = inputs
    scores = model(audio, visual)
    assert scores.shape == (B, T, 5)
    assert torch.allclose(scores, model(audio, visual.reshape(B, T, 4, 8)))


@pytest.mark.parametrize("loss", ["sel", "wsel"])
def test_backward_gives_finite_gradients_for_every_parameter(model, inputs, loss) -> None:
    audio, visual = inputs
    labels = torch.tensor([[4] * 3 + [1] * 7, [4] * 10, [2] * 5 + [0] * 5])  # (B, T)
    scores = model(audio, visual)
    if loss == "sel":
        value = sel_loss(scores, labels)
    else:
        value = mil_loss(scores, video_labels_from_segments(labels, n_classes=5, background=4))
    value.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


def test_attention_sums_to_one_over_regions(model, inputs) -> None:
    alpha = model.attention(*inputs)
    assert alpha.shape == (B, T, 4)
    assert (alpha >= 0).all()
    assert torch.allclose(alpha.sum(dim=-1), torch.ones(B, T))


def test_attention_is_audio_guided(model, inputs) -> None:
    audio, visual = inputs
    alpha = model.attention(audio, visual)
    assert not torch.allclose(alpha, model.attention(audio + 2.0, visual))


def test_attention_matches_eq1_by_hand() -> None:
    # n_a = n_c = h = 1, w^2 = 2 regions, d = 2 columns; U^v, U^a are identity + ReLU.
    model = AVEBaseline(
        audio_dim=1, visual_dim=1, n_regions=2, n_classes=2, hidden=1, attention_dim=2
    )
    with torch.no_grad():
        for layer in (model.u_v[0], model.u_a[0]):
            layer.weight.fill_(1.0)
            layer.bias.zero_()
        model.w_v.weight.copy_(torch.tensor([[1.0], [-1.0]]))  # W^v = [[1, -1]]  (h x d)
        model.w_a.weight.copy_(torch.tensor([[1.0], [-2.0]]))  # W^a = [[1], [-2]] (w^2 x h)
        model.w_f.weight.copy_(torch.tensor([[1.0, 2.0]]))  # W^f = [1, 2]     (d)
    audio = torch.tensor([0.5]).reshape(1, 1, 1)  # f^a = 0.5 -> U^a(f^a) = 0.5
    visual = torch.tensor([1.0, 3.0]).reshape(1, 1, 2, 1)  # f^v = [1, 3] -> U^v = [1, 3]
    # U^v W^v = [[1, -1], [3, -3]];  W^a U^a 1^T = [[0.5, 0.5], [-1, -1]]
    # z = [[1.5, -0.5], [2, -4]];  tanh(z) W^f = [tanh 1.5 + 2 tanh -0.5, tanh 2 + 2 tanh -4]
    logits = [math.tanh(1.5) + 2 * math.tanh(-0.5), math.tanh(2.0) + 2 * math.tanh(-4.0)]
    expected = [math.exp(s) / sum(math.exp(x) for x in logits) for s in logits]
    alpha = model.attention(audio, visual)
    assert alpha.shape == (1, 1, 2)
    assert torch.allclose(alpha.flatten(), torch.tensor(expected), atol=1e-6)


@pytest.mark.parametrize(
    ("audio_shape", "visual_shape", "match"),
    [
        ((B, T), (B, T, 2, 2, 8), r"audio: expected shape \(B, T, 6\), found \(3, 10\)"),
        ((B, T, 7), (B, T, 2, 2, 8), r"audio: .*found \(3, 10, 7\)"),
        ((B, T, 6), (B, T, 3, 3, 8), r"visual: expected .*H\*W = 4.*found \(3, 10, 3, 3, 8\)"),
        ((B, T, 6), (B, T, 4, 9), r"visual: .*\(B, T, 4, 8\), found \(3, 10, 4, 9\)"),
        ((B, T, 6), (B, T, 32), r"visual: .*found \(3, 10, 32\)"),
        ((B, T, 6), (B, 5, 4, 8), r"audio and visual: .*\(3, 10\) and \(3, 5\)"),
    ],
)
def test_bad_shapes_raise_pipeline_error(model, audio_shape, visual_shape, match) -> None:
    with pytest.raises(PipelineError, match=match):
        model(torch.zeros(audio_shape), torch.zeros(visual_shape))
    with pytest.raises(PipelineError, match=match):
        model.attention(torch.zeros(audio_shape), torch.zeros(visual_shape))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden": 0}, "hidden: expected an integer >= 1, found 0"),
        ({"attention_dim": 2.5}, "attention_dim: expected an integer >= 1, found 2.5"),
        ({"dropout": 1.0}, r"dropout: expected a number in \[0, 1\), found 1.0"),
        ({"dropout": "x"}, r"dropout: expected a number in \[0, 1\), found 'x'"),
    ],
)
def test_bad_hyperparameters_raise_pipeline_error(kwargs, match) -> None:
    with pytest.raises(PipelineError, match=match):
        AVEBaseline(**kwargs)


def test_dropout_is_active_only_in_training(inputs) -> None:
    torch.manual_seed(0)
    model = AVEBaseline(**SMALL, dropout=0.5)
    assert not torch.allclose(model(*inputs), model(*inputs))
    model.eval()
    assert torch.allclose(model(*inputs), model(*inputs))


def test_registry_builds_the_ave_baseline() -> None:
    assert MODELS["ave"] is AVEBaseline
    model = build_model("ave", **SMALL, dropout=0.1)
    assert isinstance(model, AVEBaseline)
    assert model.dropout.p == 0.1


def test_registry_unknown_name_lists_valid_names() -> None:
    with pytest.raises(PipelineError, match=r"unknown model 'tian'; valid names: ave"):
        build_model("tian")
    with pytest.raises(PipelineError, match="valid names: ave"):
        model_class("tian")


def test_registry_unknown_keys_are_named_with_accepted_keys() -> None:
    with pytest.raises(PipelineError) as error:
        build_model("ave", hiden=8, hidden=8, lr=0.1)
    message = str(error.value)
    assert message.startswith("model.hiden, model.lr: not accepted by model 'ave'")
    assert "accepted keys: audio_dim, visual_dim, n_regions, n_classes, hidden," in message


def test_model_hyperparameters_exclude_data_dims() -> None:
    assert list(declarations(["ave"])["ave"]) == [
        "hidden",
        "dropout",
        "attention_dim",
        "classifier_hidden",
        "variant",
    ]


def test_model_arguments_keep_the_chosen_models_keys_and_report_the_others():
    from pipeline.models import model_arguments

    dims = {"audio_dim": 4, "visual_dim": 6, "n_regions": 9, "n_classes": 29}
    kwargs, ignored = model_arguments("ave", {"hidden": 3, "dropout": 0.1}, dims)
    assert kwargs == {**dims, "hidden": 3, "dropout": 0.1}
    assert ignored == []


def _variant(variant: str) -> AVEBaseline:
    torch.manual_seed(0)
    return AVEBaseline(**SMALL, variant=variant).eval()


def test_variants_are_tian_et_al_ablation() -> None:
    assert VARIANTS == {
        "a": (True, False, False),
        "v": (False, True, False),
        "v_att": (False, True, True),
        "av": (True, True, False),
        "av_att": (True, True, True),
    }
    assert AVEBaseline().variant == "av_att"  # the default is the full model of eqs 1-5


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_trains_and_builds_only_what_it_uses(variant, inputs) -> None:
    model = _variant(variant).train()
    scores = model(*inputs)
    assert scores.shape == (B, T, 5)
    sel_loss(scores, torch.full((B, T), 4)).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    audio, visual, attention = VARIANTS[variant]
    names = {name.split(".")[0] for name, _ in model.named_parameters()}
    assert ("lstm_a" in names) == audio
    assert ("lstm_v" in names) == visual
    assert ("w_f" in names) == attention
    width = SMALL["hidden"] * 2 * (audio + visual)
    assert model.u_o[0].in_features == width


@pytest.mark.parametrize("variant", ["a", "v", "v_att", "av", "av_att"])
def test_variants_read_exactly_their_inputs(variant, inputs) -> None:
    audio, visual = inputs
    model = _variant(variant)
    scores = model(audio, visual)
    other_audio = model(audio + 1.0, visual)
    other_visual = model(audio, visual.flip(-1))
    # the audio matters through its stream or the attention it guides
    uses_audio, uses_visual, attention = VARIANTS[variant]
    assert (not torch.allclose(scores, other_audio)) == (uses_audio or attention)
    assert (not torch.allclose(scores, other_visual)) == uses_visual


def test_unattended_variants_read_the_average_of_the_regions(inputs) -> None:
    audio, visual = inputs
    model = _variant("av")
    mean = visual.mean(dim=(2, 3), keepdim=True).expand_as(visual)  # (B, T, 2, 2, 8)
    assert torch.allclose(model(audio, visual), model(audio, mean), atol=1e-6)
    attended = _variant("av_att")
    assert not torch.allclose(attended(audio, visual), attended(audio, mean), atol=1e-6)


def test_a_variant_has_no_attention_to_ask_for(inputs) -> None:
    with pytest.raises(PipelineError, match="variant 'av' has no attention"):
        _variant("av").attention(*inputs)


def test_unknown_variant_is_an_error() -> None:
    with pytest.raises(PipelineError, match="variant: expected one of a, v, v_att, av, av_att"):
        AVEBaseline(variant="att")
