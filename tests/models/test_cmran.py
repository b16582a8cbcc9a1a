"""Tests of CMRAN (Xu et al., ACM MM 2020): relation attention, heads, losses, shapes."""

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.errors import PipelineError
from pipeline.losses import mil_loss, video_labels_from_segments
from pipeline.models.cmran import (
    CMRAN,
    CrossModalRelationAttention,
    segment_scores,
    video_event_class,
)
from tests.models.chain import run_chain, tiny_params

SMALL = {
    "audio_dim": 6,
    "visual_dim": 8,
    "n_regions": 4,
    "n_classes": 5,
    "hidden": 8,
    "heads": 2,
    "av_heads": 2,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "feedforward": 16,
    "attention_hidden": 6,
    "bottleneck": 4,
}
B, T = 3, 10
LABELS = torch.tensor([[4] * 3 + [1] * 7, [4] * 10, [2] * 5 + [0] * 5])  # (B, T)


@pytest.fixture
def model() -> CMRAN:
    torch.manual_seed(0)
    return CMRAN(**SMALL)


@pytest.fixture
def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    audio = torch.randn(B, T, 6, generator=generator)
    visual = torch.rand(B, T, 2, 2, 8, generator=generator)
    return audio, visual


def identity_attention(dim: int) -> CrossModalRelationAttention:
    """One head, identity Q/K/V and output projections, no dropout, FFN output zero."""
    layer = CrossModalRelationAttention(dim, heads=1, feedforward=4, dropout=0.0)
    with torch.no_grad():
        layer.attention.in_proj_weight.copy_(torch.eye(dim).repeat(3, 1))
        layer.attention.in_proj_bias.zero_()
        layer.attention.out_proj.weight.copy_(torch.eye(dim))
        layer.attention.out_proj.bias.zero_()
        layer.feedforward.net[3].weight.zero_()
        layer.feedforward.net[3].bias.zero_()
    return layer


def test_relation_attention_is_a_softmax_weighted_sum_over_both_modalities() -> None:
    layer = identity_attention(2)
    query = torch.tensor([[[1.0, 0.0]]])  # (1, T=1, 2)
    memory = torch.tensor([[[0.0, 2.0]]])  # the other modality's segment
    # keys [m; q] = [[0, 2], [1, 0]]: logits q.k / sqrt 2 = [0, 1/sqrt 2]
    w = torch.softmax(torch.tensor([0.0, 1 / math.sqrt(2)]), dim=0)
    attended = w[0] * torch.tensor([0.0, 2.0]) + w[1] * torch.tensor([1.0, 0.0])
    after = F.layer_norm(query[0, 0] + attended, (2,))
    expected = F.layer_norm(after, (2,))  # the FFN adds 0, then its own layer norm
    assert torch.allclose(layer(query, memory)[0, 0], expected, atol=1e-5)


def test_relation_attention_weights_sum_to_one_over_the_2T_segments() -> None:
    torch.manual_seed(0)
    layer = identity_attention(4)
    query, memory = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    both = torch.cat([memory, query], dim=1)  # (2, 6, 4)
    attended, weights = layer.attention(query, both, both, average_attn_weights=True)
    assert weights.shape == (2, 3, 6)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3))
    assert torch.allclose(attended, weights @ both, atol=1e-6)  # a weighted sum of segments
    assert not torch.allclose(layer(query, memory), layer(query, memory + 1.0))


def test_segment_scores_by_hand() -> None:
    relevance = torch.tensor([[2.0, -1.0]])  # (1, T=2)
    logits = torch.tensor([[1.0, 3.0, 0.0]])  # (1, C=3), background = 2
    ls = torch.log_softmax(logits, -1)[0]
    shifted = ls - ls.max()  # [-2, 0, -3]
    scores = segment_scores(relevance, logits, background=2)[0]
    log_sig = F.logsigmoid
    t0 = torch.tensor([-2.0, 0.0, 0.0]) + log_sig(torch.tensor(2.0))
    t0[2] = max(log_sig(torch.tensor(2.0)) + shifted[2], log_sig(torch.tensor(-2.0)))
    t1 = shifted + log_sig(torch.tensor(-1.0))
    t1[2] = log_sig(torch.tensor(1.0))
    assert torch.allclose(scores, torch.stack([t0, t1]), atol=1e-6)
    assert scores.argmax(-1).tolist() == [1, 2]


def test_segment_argmax_is_cmrans_decision_rule() -> None:
    generator = torch.Generator().manual_seed(0)
    relevance = torch.randn(50, T, generator=generator) * 3
    logits = torch.randn(50, 5, generator=generator) * 3
    expected = torch.where(relevance > 0, logits.argmax(-1, keepdim=True), 4)  # (50, T)
    assert torch.equal(segment_scores(relevance, logits, 4).argmax(-1), expected)


def test_video_event_class() -> None:
    labels = torch.tensor([[4, 1, 1], [4, 4, 4], [2, 3, 4]])
    assert video_event_class(labels, background=4).tolist() == [1, 4, 3]


def pack(relevance: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The ``(B, T, 1 + C)`` features of ``forward(..., return_features=True)``."""
    repeated = logits.unsqueeze(1).expand(-1, relevance.shape[1], -1)
    return torch.cat([relevance.unsqueeze(-1), repeated], dim=-1)


def test_sel_loss_by_hand(model) -> None:
    features = pack(torch.zeros(B, T), torch.zeros(B, 5))
    # BCE of logit 0 is log 2 for every segment; CE of uniform logits is log 5.
    loss = model.feature_loss(features, LABELS)
    assert loss.item() == pytest.approx(math.log(2) + math.log(5))
    relevance = torch.full((B, T), 50.0)
    logits = torch.full((B, 5), -50.0)
    logits[0, 1] = logits[1, 4] = logits[2, 2] = 50.0  # each video's class (2: highest)
    is_event = (LABELS != 4).float()
    expected = F.binary_cross_entropy_with_logits(relevance, is_event)
    assert model.feature_loss(pack(relevance, logits), LABELS).item() == pytest.approx(
        expected.item(), rel=1e-5
    )
    assert CMRAN.seg_weight == 0.0


def test_weak_video_prediction_by_hand() -> None:
    scores = torch.tensor([[[0.0, 1.0, -1.0], [2.0, 0.0, -3.0]]])  # (1, T=2, C=3)
    expected = torch.softmax(torch.tensor([2.0, 1.0, -1.0]), dim=0)  # max over time
    assert torch.allclose(CMRAN.video_probabilities(scores)[0], expected)
    labels = torch.tensor([[1.0, 0.0, 0.0]])
    assert CMRAN.wsel_loss(scores, labels).item() == pytest.approx(mil_loss(scores, labels).item())
    with pytest.raises(PipelineError, match=r"expected shape \(1, 3\), found \(1, 2\)"):
        CMRAN.wsel_loss(scores, torch.ones(1, 2))


def test_spatial_and_channel_attention_invariants(model, inputs) -> None:
    audio, visual = inputs
    regions = visual.flatten(2, 3)
    channels = model.attention.channel_weights(audio, regions)
    assert channels.shape == (B, T, 1, 8)
    assert ((channels > 0) & (channels < 1)).all()
    spatial = model.attention.spatial_weights(audio, regions)
    assert spatial.shape == (B, T, 4)
    assert torch.allclose(spatial.sum(-1), torch.ones(B, T))
    assert not torch.allclose(spatial, model.attention.spatial_weights(audio + 1, regions))


def test_default_dims_take_7x7x512_maps() -> None:
    torch.manual_seed(0)
    scores = CMRAN()(torch.randn(2, T, 128), torch.rand(2, T, 7, 7, 512))
    assert scores.shape == (2, T, 29)
    assert CMRAN.needs_maps


@pytest.mark.parametrize("setting", ["sel", "wsel"])
def test_shapes_and_finite_gradients(model, inputs, setting) -> None:
    if setting == "sel":
        scores, features = model(*inputs, return_features=True)
        assert features.shape == (B, T, 1 + 5)
        assert torch.equal(features[:, 0, 1:], features[:, -1, 1:])  # one k per video
        loss = model.feature_loss(features, LABELS)
    else:
        scores = model(*inputs)
        labels = video_labels_from_segments(LABELS, n_classes=5, background=4)
        loss = model.wsel_loss(scores, labels)
    assert scores.shape == (B, T, 5)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name


def test_bad_shapes_raise_pipeline_error(model) -> None:
    with pytest.raises(PipelineError, match=r"CMRAN visual: expected .*H\*W = 4"):
        model(torch.zeros(B, T, 6), torch.zeros(B, T, 3, 3, 8))
    with pytest.raises(PipelineError, match=r"CMRAN audio: expected shape \(B, T, 6\)"):
        model(torch.zeros(B, T, 5), torch.zeros(B, T, 2, 2, 8))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"heads": 3}, "heads: expected a divisor of hidden = 256, found 3"),
        ({"av_heads": 0}, "av_heads: expected an integer >= 1, found 0"),
        ({"input_dropout": 1.0}, r"input_dropout: expected a number in \[0, 1\)"),
    ],
)
def test_bad_hyperparameters_raise_pipeline_error(kwargs, match) -> None:
    with pytest.raises(PipelineError, match=match):
        CMRAN(**kwargs)


def test_cmran_runs_through_train_evaluate_refine_and_retrain(tiny_store, tmp_path, monkeypatch):
    tiny = {"hidden": 8, "heads": 2, "av_heads": 2, "feedforward": 8, "encoder_layers": 1}
    params = tiny_params("cmran", {**tiny, "attention_hidden": 4, "bottleneck": 4})
    run_chain(tiny_store, tmp_path, monkeypatch, params)


@pytest.mark.parametrize("setting", ["sel", "wsel"])
def test_a_few_steps_fit_one_batch(inputs, setting) -> None:
    torch.manual_seed(0)
    model = CMRAN(**SMALL, dropout=0.0, input_dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    weak = video_labels_from_segments(LABELS, n_classes=5, background=4)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        if setting == "sel":
            scores, features = model(*inputs, return_features=True)
            loss = model.feature_loss(features, LABELS)
        else:
            loss = model.wsel_loss(model(*inputs), weak)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    # The soft margin loss of probabilities cannot fall far (sigmoid of [0, 1]): only SEL halves.
    assert losses[-1] < (0.5 if setting == "sel" else 0.95) * losses[0]
    if setting == "sel":
        predicted = model.eval()(*inputs).argmax(-1)  # (B, T)
        assert (predicted == LABELS).float().mean() >= 0.75
        # One event class per video (CMRAN's rule): video 2's two classes cannot both be right.
        assert len(set(predicted[2].tolist()) - {4}) == 1


def reference_heads(model, audio, visual):
    """CMRAN's heads with AGSCA and the adapter composed as before the fused layers."""
    regions = visual.flatten(2, 3)  # (B, T, K, d_v)
    att = model.attention
    adapted = model.visual_adapter(regions)  # Linear, ReLU, Dropout
    joint = torch.relu(att.audio_1(audio)).unsqueeze(2) * torch.relu(att.visual_1(adapted))
    squeezed = torch.relu(att.squeeze(joint.mean(dim=2)))
    channel = torch.sigmoid(att.excite(squeezed)).unsqueeze(2)
    attended = adapted * (channel + 1)
    joint = torch.relu(att.visual_2(attended)) * torch.relu(att.audio_2(audio)).unsqueeze(2)
    spatial = torch.softmax(torch.tanh(att.spatial(joint)).squeeze(-1), dim=-1)
    pooled = torch.einsum("btk,btkd->btd", spatial, attended)
    inputs = {"audio": audio, "visual": pooled}
    audio_out = model.relation_aware("audio", "visual", inputs)
    visual_out = model.relation_aware("visual", "audio", inputs)
    fused = model.interaction(visual_out, audio_out)
    return model.relevance(fused).squeeze(-1), model.classes(fused.amax(dim=1))


def test_attention_equals_the_composed_layers_in_float64(model, inputs) -> None:
    # Relevance, class logits, SEL loss and every gradient against the composition of
    # PyTorch layers (the code before the products were folded), same weights, eval mode.
    model = model.double().eval()
    audio, visual = (x.double().requires_grad_() for x in inputs)
    results = []
    for heads in (model.heads, lambda a, v: reference_heads(model, a, v)):
        model.zero_grad()
        relevance, logits = heads(audio, visual)
        event = video_event_class(LABELS, 4)
        loss = F.binary_cross_entropy_with_logits(relevance, (LABELS != 4).double())
        (loss + F.cross_entropy(logits, event)).backward()
        grads = [p.grad.clone() for p in model.parameters()]
        results.append([relevance, logits, audio.grad.clone(), visual.grad.clone(), *grads])
        audio.grad, visual.grad = None, None
    for new, old in zip(*results, strict=True):
        assert torch.allclose(new, old, rtol=0, atol=1e-9)
