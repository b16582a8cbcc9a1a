"""Label refinement on AVVP: partners, synthetic videos, per-modality slice labels, losses."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.avvp.refine import (
    auxiliary_loss,
    draw_partners,
    estimate_slice_labels,
    refinement_loss,
    slice_quality,
    slice_truth,
    synthetic_inputs,
)
from pipeline.avvp.train import AVVPData, Refinement, evaluate_avvp, fit_avvp, load_data
from pipeline.errors import PipelineError
from pipeline.losses import AVVPOutput, han_loss, mmil_pool
from pipeline.models.han import HAN
from pipeline.refinement.slices import slice_starts

C, T = 4, 10


class Oracle(nn.Module):
    """Segment probabilities read off the features: audio -> audio, frames -> visual.

    Uniform attention, so a pooled modality probability is the mean over the pooled segments.
    """

    def forward(self, audio, frames, snippets) -> AVVPOutput:
        probs = torch.stack([audio, frames], dim=2).clamp(0, 1)  # (B, T, 2, C)
        return AVVPOutput(probs, torch.zeros_like(probs), torch.zeros_like(probs))


def test_partners_share_no_label_and_are_seeded():
    weak = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1]])
    partners = draw_partners(weak, seed=0)
    assert not ((weak * weak[partners]).any(axis=1)).any()
    assert partners[2] == 3 and partners[4] == 1  # the only disjoint videos
    np.testing.assert_array_equal(partners, draw_partners(weak, seed=0))
    with pytest.raises(PipelineError, match="training video 1 shares a weak label"):
        draw_partners(np.array([[1, 0], [1, 1], [0, 1]]), seed=0)


def test_synthetic_inputs_keep_the_window_and_its_frames():
    first = {
        "audio": torch.ones(1, T, 2),
        "frames": torch.ones(1, 3 * T, 2),
        "snippets": torch.ones(1, T, 1),
    }
    second = {k: torch.zeros_like(v) for k, v in first.items()}
    out = synthetic_inputs(first, second, [0, 6], 4)
    assert out["audio"].shape == (2, T, 2) and out["frames"].shape == (2, 3 * T, 2)
    assert out["audio"][1, :, 0].tolist() == [0] * 6 + [1] * 4
    assert out["frames"][0, :, 0].tolist() == [1] * 12 + [0] * 18  # 3 frames per segment


def _streams(audio: np.ndarray, visual: np.ndarray) -> dict[str, torch.Tensor]:
    """Streams whose segment probabilities (Oracle) are ``audio`` and ``visual`` (n, T, C)."""
    a, v = torch.tensor(audio, dtype=torch.float32), torch.tensor(visual, dtype=torch.float32)
    return {"audio": a, "frames": v, "snippets": torch.zeros(len(a), T, 1)}


def test_slice_labels_on_a_hand_case():
    audio, visual = np.zeros((2, T, C)), np.zeros((2, T, C))
    audio[0, 0:3, 0] = 1  # video 0: class 0 heard in [0, 3), class 1 seen in [5, 10)
    visual[0, 5:10, 1] = 1
    audio[1, :, 2] = 1  # video 1 (the partner): class 2 heard throughout
    weak = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 0]], dtype=torch.float32)
    starts = slice_starts(T, 4, 2)  # [0, 2, 4, 6]
    labels = estimate_slice_labels(
        Oracle(), _streams(audio, visual), weak, np.array([1, 0]), starts, 4, tau=0.15
    )
    assert labels.shape == (2, 4, 2, C)
    # pooled = (segments of the class inside the window) / 10; tau 0.15 needs 2 of them
    assert labels[0, :, 0, 0].tolist() == [True, False, False, False]  # [0,4) holds 3; [2,6) 1
    assert labels[0, :, 1, 1].tolist() == [False, False, True, True]  # [4,8) 3, [6,10) 4
    # class 2 fills the partner's segments outside the window, but is not video 0's label
    assert not labels[0, :, :, 2].any()
    assert labels[1, :, 0, 2].all() and labels[1].sum() == 4


def test_refinement_loss_only_sees_its_window():
    torch.manual_seed(0)
    probs = torch.rand(2, T, 2, C)
    out = AVVPOutput(probs, torch.randn(2, T, 2, C), torch.randn(2, T, 2, C))
    slices = (torch.rand(2, 1, 2, C) < 0.5).float()
    changed = probs.clone()
    changed[:, :2], changed[:, 6:] = 0.01, 0.99
    other = AVVPOutput(changed, out.time_logits, out.modality_logits)
    loss = refinement_loss(out, slices, [2], 4)
    torch.testing.assert_close(loss, refinement_loss(other, slices, [2], 4))
    window = torch.zeros(T, dtype=torch.bool)
    window[2:6] = True
    union = torch.maximum(slices[:, 0, 0], slices[:, 0, 1])
    expected = han_loss(
        mmil_pool(out, window), union, audio_labels=slices[:, 0, 0], visual_labels=slices[:, 0, 1]
    )
    torch.testing.assert_close(loss, expected)


def test_auxiliary_loss_targets_the_union():
    audio, visual = np.zeros((2, T, C)), np.zeros((2, T, C))
    audio[0, 0:2, 0] = visual[0, 0:2, 0] = 1  # first video: class 0 at the start
    audio[1, :, 3] = visual[1, :, 3] = 1  # partner: class 3 everywhere
    streams = _streams(audio, visual)
    first = {k: v[:1] for k, v in streams.items()}
    second = {k: v[1:] for k, v in streams.items()}
    union, own = torch.tensor([[1.0, 0, 0, 1]]), torch.tensor([[1.0, 0, 0, 0]])
    starts = slice_starts(T, 4, 2)
    to_union = auxiliary_loss(Oracle(), first, second, union, starts, 4, 0.0, 0.0)
    to_own = auxiliary_loss(Oracle(), first, second, own, starts, 4, 0.0, 0.0)
    assert to_union < to_own


def test_slice_truth_and_quality():
    dense = np.zeros((1, 2, C, T))
    dense[0, 0, 1, 0:3] = 1
    truth = slice_truth(dense, [0, 6], 4)
    assert truth.shape == (1, 2, 2, C)
    assert truth[0, :, 0, 1].tolist() == [True, False] and truth.sum() == 1
    predicted = truth.copy()
    predicted[0, 1, 1, 2] = True  # one false visual positive
    quality = slice_quality(predicted, truth)
    assert quality["audio_precision"] == 1.0 and quality["audio_recall"] == 1.0
    assert quality["visual_precision"] == 0.0 and quality["visual_recall"] is None
    assert quality["all_f1"] == pytest.approx(2 / 3)


CONFIG = {
    "seed": 0,
    "epochs": 2,
    "batch_size": 8,
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 0.0,
    "step_size": 10,
    "gamma": 0.1,
    "audio_smoothing": 0.0,
    "visual_smoothing": 0.1,
}


def test_han_then_han_lr_on_the_tiny_store(tiny_llp: Path):
    """Step 1 with the auxiliary objective, Step 2, Step 3 on the tiny store: the plumbing."""
    torch.manual_seed(0)
    device = torch.device("cpu")
    train, val = load_data(tiny_llp, "train"), load_data(tiny_llp, "val")
    assert train.streams["frames"].shape == (24, T, 12)  # averaged over the 8 frames
    starts = slice_starts(T, 4, 2)
    partners = torch.as_tensor(draw_partners(train.weak.numpy(), seed=0))
    model = HAN(**train.dims(), hidden=16, feedforward=16)
    aux = Refinement(starts, 4, partners=partners)
    result = fit_avvp(model, train, val, CONFIG, device, aux)
    assert [row["epoch"] for row in result.history] == [1, 2]
    assert result.best_epoch in (1, 2) and set(result.best_val) >= {"type_segment", "av_event"}
    model.load_state_dict(result.best_state)
    labels = estimate_slice_labels(
        model, train.streams, train.weak, partners.numpy(), starts, 4, 0.5
    )
    assert labels.shape == (24, 4, 2, 25)
    assert not (labels & ~train.weak.numpy().astype(bool)[:, None, None, :]).any()  # eq 10
    retrained = HAN(**train.dims(), hidden=16, feedforward=16)
    lr = Refinement(starts, 4, slice_labels=torch.as_tensor(labels))
    again = fit_avvp(retrained, train, val, dict(CONFIG, epochs=1), device, lr)
    assert np.isfinite(again.history[0]["train_loss"])
    test = load_data(tiny_llp, "test")
    assert 0.0 <= evaluate_avvp(retrained, test)["event_event"] <= 1.0
    assert isinstance(test, AVVPData) and test.dense.shape == (8, 2, 25, T)
