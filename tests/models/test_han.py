"""HAN: shapes, the MMIL pooling weights, label smoothing and a tiny training run."""

import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.losses import AVVPOutput, Pooled, han_loss, mmil_pool, mmil_weights, smooth
from pipeline.models.han import HAN

DIMS = {"audio_dim": 6, "frame_dim": 10, "snippet_dim": 4, "n_classes": 5}


def _model(**kwargs) -> HAN:
    torch.manual_seed(0)
    return HAN(**DIMS, hidden=16, feedforward=16, **kwargs)


def _batch(B: int = 3, T: int = 10, k: int = 8) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(1)
    return torch.randn(B, T, 6), torch.randn(B, T * k, 10), torch.randn(B, T, 4)


def test_shapes_and_probability_ranges():
    out = _model().eval()(*_batch())
    for tensor in (out.probs, out.time_logits, out.modality_logits):
        assert tensor.shape == (3, 10, 2, 5)
    assert ((out.probs > 0) & (out.probs < 1)).all()
    pooled = mmil_pool(out)
    for p in (pooled.video, pooled.audio, pooled.visual):
        assert p.shape == (3, 5) and ((p >= 0) & (p <= 1)).all()


def test_pooling_weights_sum_to_one_over_time_and_over_modality():
    torch.manual_seed(2)
    out = AVVPOutput(torch.rand(2, 10, 2, 5), torch.randn(2, 10, 2, 5), torch.randn(2, 10, 2, 5))
    time_att, modality_att = mmil_weights(out)
    torch.testing.assert_close(time_att.sum(dim=1), torch.ones(2, 2, 5))
    torch.testing.assert_close(modality_att.sum(dim=2), torch.ones(2, 10, 5))
    window = torch.zeros(10, dtype=torch.bool)
    window[2:6] = True
    time_att, _ = mmil_weights(out, window)
    torch.testing.assert_close(time_att.sum(dim=1), torch.ones(2, 2, 5))
    assert (time_att[:, ~window] == 0).all()
    # with every segment probability 1, a modality's pooled probability is its weights' sum
    ones = AVVPOutput(torch.ones(2, 10, 2, 5), out.time_logits, out.modality_logits)
    torch.testing.assert_close(mmil_pool(ones).audio, torch.ones(2, 5))
    torch.testing.assert_close(mmil_pool(ones).visual, torch.ones(2, 5))


def test_window_pooling_ignores_segments_outside_it():
    torch.manual_seed(3)
    probs = torch.rand(1, 10, 2, 5)
    out = AVVPOutput(probs, torch.randn(1, 10, 2, 5), torch.randn(1, 10, 2, 5))
    window = torch.zeros(10, dtype=torch.bool)
    window[4:8] = True
    changed = probs.clone()
    changed[:, :4], changed[:, 8:] = 1.0, 1.0  # outside the window
    inside = mmil_pool(out, window)
    other = mmil_pool(AVVPOutput(changed, out.time_logits, out.modality_logits), window)
    torch.testing.assert_close(inside.video, other.video)
    # uniform attention logits: the pooled audio probability is the window's mean
    flat = AVVPOutput(probs, torch.zeros_like(probs), torch.zeros_like(probs))
    torch.testing.assert_close(mmil_pool(flat, window).audio, probs[:, 4:8, 0].mean(dim=1))


def test_frames_averaged_beforehand_give_the_same_output():
    model = _model().eval()
    audio, frames, snippets = _batch()
    averaged = frames.view(3, 10, 8, 10).mean(dim=2)  # (B, T, F), k = 1
    full, pre = model(audio, frames, snippets), model(audio, averaged, snippets)
    torch.testing.assert_close(full.probs, pre.probs, atol=1e-5, rtol=1e-5)


def test_shared_and_separate_layers():
    shared, separate = _model(), _model(share_layers=False)
    assert shared.audio_layers is shared.visual_layers
    assert separate.audio_layers is not separate.visual_layers
    count = sum(p.numel() for p in separate.parameters()) - sum(
        p.numel() for p in shared.parameters()
    )
    assert count == sum(p.numel() for p in shared.audio_layers.parameters())


def test_smoothing_and_loss_on_a_hand_case():
    labels = torch.tensor([[1.0, 0.0]])
    torch.testing.assert_close(smooth(labels, 0.1), torch.tensor([[0.95, 0.05]]))
    half = torch.full((1, 2), 0.5)
    loss = han_loss(Pooled(half, half, half), labels, 0.0, 0.1)
    # each BCE of p = 1/2 is log 2 whatever the target
    assert loss.item() == pytest.approx(3 * torch.log(torch.tensor(2.0)).item())


@pytest.mark.parametrize(("key", "value"), [("hidden", 0), ("dropout", 1.0), ("layers", 0)])
def test_bad_hyperparameters_are_named(key: str, value: object):
    with pytest.raises(PipelineError, match=f"han {key}"):
        HAN(**{key: value})
    with pytest.raises(PipelineError, match="multiple of heads"):
        HAN(hidden=10, heads=3)


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread (and do not fight the other test processes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_tiny_training_fits_weak_labels(one_thread):
    """80 Adam steps fit the weak labels of 8 videos whose audio names the class."""
    torch.manual_seed(0)
    B, C = 8, 5
    labels = torch.zeros(B, C)
    labels[torch.arange(B), torch.arange(B) % C] = 1
    audio = torch.randn(B, 10, 6) * 0.1
    audio[:, :, :C] += labels[:, None, :] * 2
    frames, snippets = torch.randn(B, 10, 10) * 0.1, torch.randn(B, 10, 4) * 0.1
    model = _model(dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        optimizer.zero_grad()
        loss = han_loss(mmil_pool(model(audio, frames, snippets)), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    video = mmil_pool(model.eval()(audio, frames, snippets)).video
    assert torch.equal(video >= 0.5, labels.bool())


def test_han_is_a_registered_avvp_model_whose_declaration_is_the_params_section():
    """HAN registers as ``han`` for the AVVP task; ``avvp.model`` is generated from it."""
    import inspect

    from pipeline.config.schema import section_class
    from pipeline.models import AVVP_DATA_DIMS, MODELS, model_class

    assert MODELS["han"] is HAN and HAN.task == "avvp" and "han" in MODELS.of_task("avvp")
    assert "han" not in MODELS.of_task("avel")
    arguments = inspect.signature(HAN.__init__).parameters
    declared = {hyper.name: hyper for hyper in HAN.hyperparameters}
    assert list(declared) == [name for name in arguments if name not in ("self", *AVVP_DATA_DIMS)]
    for name, hyper in declared.items():
        assert hyper.problem(arguments[name].default) is None, name  # defaults are valid
    section = section_class("avvp").model_fields["model"].annotation
    assert list(section.model_fields) == ["name", *declared]
    assert declared["dropout"].problem(1.0) == "expected a number ≥ 0 and < 1"
    with pytest.raises(
        PipelineError, match="avvp.model.name: unknown model 'hna'; valid names: han"
    ):
        model_class("hna", "avvp")
    with pytest.raises(PipelineError, match="model 'psp' serves the avel task, not avvp"):
        model_class("psp", "avvp")
