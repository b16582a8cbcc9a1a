"""The model contract (pipeline.models.base): its checks, and every registered model meeting it."""

import math

import pytest
import torch

from pipeline.config.signature import keyword_defaults
from pipeline.errors import PipelineError
from pipeline.losses import han_loss, mmil_pool, video_labels_from_segments
from pipeline.models import MODELS, AVELModel, Hyper, build_model, check_model, register
from pipeline.models.base import declarations

# Tiny data: 6 audio features, 2x2 maps of 8 channels, the 29 AVE classes.
DIMS = {"audio_dim": 6, "visual_dim": 8, "n_regions": 4, "n_classes": 29}
SMALL = {"hidden": 8, "blocks": 1}  # keeps the wide models fast; other keys stay default
B, T, C = 2, 10, 29
LABELS = torch.tensor([[28] * 4 + [3] * 6, [28] * 10])  # (B, T)


def _model(name: str) -> AVELModel:
    torch.manual_seed(0)
    cls = MODELS[name]
    accepted = keyword_defaults(cls)
    return build_model(name, **{k: v for k, v in {**DIMS, **SMALL}.items() if k in accepted})


def _inputs(model: AVELModel) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    audio = torch.randn(B, T, 6, generator=generator)  # (B, T, A)
    maps = torch.rand(B, T, 2, 2, 8, generator=generator)  # (B, T, H, W, V)
    return audio, maps if model.needs_maps else maps.mean(dim=(2, 3))


@pytest.mark.parametrize("name", MODELS.of_task("avel"))
def test_every_registered_model_meets_the_contract(name):
    model = _model(name)
    audio, visual = _inputs(model)
    scores = model(audio, visual)
    assert scores.shape == (B, T, C)
    probabilities = model.video_probabilities(scores)
    assert probabilities.shape == (B, C)
    assert torch.allclose(probabilities.sum(-1), torch.ones(B), atol=1e-5)
    assert (probabilities >= 0).all()
    loss = model.wsel_loss(scores, video_labels_from_segments(LABELS))
    assert loss.shape == () and torch.isfinite(loss)
    if model.has_feature_loss:
        scores, features = model(audio, visual, return_features=True)
        loss = loss + model.feature_loss(features, LABELS)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    for output in model.outputs:
        assert model(audio, visual, output=output).shape == (B, T, C)
    assert isinstance(model.min_segments, int) and model.min_segments >= 1
    assert isinstance(model.seg_weight, float)


# Tiny LLP-like data: 6 audio, 10 frame and 4 snippet features, 5 event classes.
AVVP_DIMS = {"audio_dim": 6, "frame_dim": 10, "snippet_dim": 4, "n_classes": 5}


@pytest.mark.parametrize("name", MODELS.of_task("avvp"))
def test_every_registered_avvp_model_meets_the_avvp_contract(name):
    torch.manual_seed(0)
    accepted = keyword_defaults(MODELS[name])
    model = build_model(name, **{k: v for k, v in {**AVVP_DIMS, **SMALL}.items() if k in accepted})
    generator = torch.Generator().manual_seed(1)
    audio, frames, snippets = (
        torch.randn(B, T, n, generator=generator) for n in (6, 10, 4)
    )  # (B, T, A), (B, T, F), (B, T, S)
    output = model(audio, frames, snippets)
    for tensor in (output.probs, output.time_logits, output.modality_logits):
        assert tensor.shape == (B, T, 2, 5)
    assert ((output.probs >= 0) & (output.probs <= 1)).all()
    loss = han_loss(mmil_pool(output), torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 0]]))
    loss.backward()
    assert torch.isfinite(loss)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_builds_from_its_declared_defaults(name):
    cls = MODELS[name]
    defaults = keyword_defaults(cls)
    declared = declarations([name])[name]
    assert cls.task in ("avel", "avvp")
    assert set(declared) == set(defaults) - set(cls.data_dims)
    check_model(name, {key: defaults[key] for key in declared})


def _hyper(**kwargs) -> Hyper:
    return Hyper("x", kwargs.pop("kind", int), "a test key", **kwargs)


@pytest.mark.parametrize(
    ("hyper", "value", "problem"),
    [
        (_hyper(ge=2, le=5), 6, "expected an integer ≥ 2 and ≤ 5"),
        (_hyper(ge=2, le=5), 5, None),
        (_hyper(ge=2), True, "expected an integer ≥ 2"),
        (_hyper(kind=float, ge=0, lt=1), 1.0, "expected a number ≥ 0 and < 1"),
        (_hyper(kind=float, ge=0, lt=1), 0, None),
        (_hyper(kind=float), math.inf, "expected a number"),
        (_hyper(kind=str, choices=("a", "b")), "c", "expected one of 'a', 'b'"),
        (_hyper(kind=list, choices=("a", "b")), ["a", "c"], "expected a list of 'a', 'b'"),
        (_hyper(kind=list, choices=("a", "b")), ("b",), None),
        (_hyper(kind=bool), 1, "expected true or false"),
        (_hyper(rule=lambda v: "odd" if v % 2 else None), 3, "odd"),
    ],
)
def test_hyper_problem_names_what_is_expected(hyper, value, problem):
    assert hyper.problem(value) == problem


class _Tiny(AVELModel):
    hyperparameters = (Hyper("width", int, "width", ge=1),)

    def __init__(self, audio_dim: int = 4, width: int = 2) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(audio_dim, width)


def _register_error(name: str, cls: type) -> str:
    with pytest.raises(TypeError) as info:
        register(name)(cls)
    assert name not in MODELS or MODELS[name] is not cls
    return str(info.value)


def test_register_checks_the_class_against_the_contract():
    assert "lowercase" in _register_error("Tiny", _Tiny)
    assert "subclass of pipeline.models.base.AVELModel" in _register_error("tiny", torch.nn.Linear)
    assert "taken by DPNet" in _register_error("dpnet", _Tiny)

    class Undeclared(_Tiny):
        hyperparameters = ()

    assert "must be exactly the constructor arguments" in _register_error("tiny", Undeclared)

    class BadDefault(_Tiny):
        hyperparameters = (Hyper("width", int, "width", ge=3),)

    assert "default of width: expected an integer ≥ 3" in _register_error("tiny", BadDefault)

    class Required(_Tiny):
        def __init__(self, width: int) -> None:
            super().__init__(width=width)

    assert "without a default: ['width']" in _register_error("tiny", Required)


def test_feature_loss_is_detected_from_the_class():
    class WithLoss(_Tiny):
        def feature_loss(self, features, labels):
            return features.sum()

    assert WithLoss.has_feature_loss and not _Tiny.has_feature_loss
    assert MODELS["edrnet"].has_feature_loss and not MODELS["dpnet"].has_feature_loss


def test_build_model_names_unknown_models_and_keys():
    with pytest.raises(PipelineError, match="unknown model 'nope'; valid names: ave, cmran, dpnet"):
        build_model("nope")
    with pytest.raises(PipelineError, match="model.width: not accepted by model 'dpnet'"):
        build_model("dpnet", width=3)
