"""Training objectives: SEL, replicas and links, WSEL with the auxiliary and LR losses."""

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.errors import PipelineError
from pipeline.losses import (
    auxiliary_loss,
    label_refinement_loss,
    mil_loss,
    sel_loss,
    video_labels_from_segments,
)
from pipeline.models.base import AVELModel
from pipeline.models.graph import PairedBatch
from pipeline.refinement.slices import synthetic_videos
from pipeline.training.objectives import (
    Supervised,
    WithAuxiliary,
    WithReplicas,
    WithSliceLabels,
    weak_loss,
)

CPU = torch.device("cpu")
T, C = 10, 29


class _Recorder(AVELModel):
    """Scores from the audio's first feature, remembering every call's inputs."""

    uses_graph = True

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(C))
        self.calls = []

    def forward(self, audio, visual, graph=None):
        self.calls.append({"audio": audio, "visual": visual, "graph": graph})
        return audio[..., :1] * self.weight  # (B, T, C)

    def wsel_loss(self, scores, video_labels):
        return mil_loss(scores, video_labels)


class _Pool:
    """A replica pool: replica ``p`` has audio ``1000 + p`` and labels ``p % 28``."""

    def __getitems__(self, indices):
        idx = torch.tensor(indices)
        value = (1000 + idx).float()[:, None, None].expand(-1, T, 2)
        return {
            "audio": value,
            "visual": value.clone(),
            "labels": (idx % 28)[:, None].expand(-1, T),
            "index": idx,
        }


def _batch(index, labels=None):
    index = torch.tensor(index)
    value = index.float()[:, None, None].expand(-1, T, 2)
    if labels is None:
        labels = torch.full((len(index), T), 28)
    return {"audio": value, "visual": value.clone(), "labels": labels, "index": index}


def test_supervised_is_cross_entropy_and_pseudo_labels_are_found_by_index():
    model = _Recorder()
    batch = _batch([1, 0], torch.tensor([[5] * T, [28] * T]))
    loss = Supervised()(model, batch, 1, CPU)
    scores = model.calls[-1]["audio"][..., :1] * model.weight
    assert loss.item() == pytest.approx(sel_loss(scores, batch["labels"]).item())
    pseudo = np.array([[3] * T, [7] * T])
    loss = Supervised(pseudo)(model, batch, 1, CPU)
    expected = sel_loss(scores, torch.tensor([[7] * T, [3] * T]))
    assert loss.item() == pytest.approx(expected.item())


def test_weak_loss_sees_only_which_events_occur():
    model = _Recorder()
    torch.manual_seed(0)
    batch = _batch([0])
    batch["audio"] = torch.randn(1, T, 2)
    early = torch.tensor([[5, 5] + [28] * 8])
    late = torch.tensor([[28] * 8 + [5, 5]])
    a = weak_loss(model, {**batch, "labels": early}, 1, CPU)
    b = weak_loss(model, {**batch, "labels": late}, 1, CPU)
    assert a.item() == pytest.approx(b.item())
    scores = batch["audio"][..., :1] * model.weight
    assert a.item() == pytest.approx(mil_loss(scores, video_labels_from_segments(early)).item())


@pytest.mark.parametrize(("link", "uses_graph"), [(True, True), (True, False), (False, True)])
def test_replicas_join_the_batch_in_the_linked_layout(link, uses_graph):
    model = _Recorder()
    model.uses_graph = uses_graph
    objective = WithReplicas(_Pool(), per_video=3, n_originals=10, link=link)
    batch = _batch([4, 12, 1])  # 12 is not an original (an SMB video)
    objective(model, batch, epoch=5, device=CPU)  # replica r = (5 - 1) % 3 = 1
    audio = model.calls[-1]["audio"][:, 0, 0].tolist()
    assert audio == [4, 1, 1000 + 4 * 3 + 1, 1000 + 1 * 3 + 1, 12]
    graph = model.calls[-1]["graph"]
    if link and uses_graph:
        assert graph == PairedBatch(2, 1)
    else:
        assert graph is None


def test_replica_loss_is_cross_entropy_over_originals_and_replicas():
    model = _Recorder()
    objective = WithReplicas(_Pool(), per_video=2, n_originals=5, link=True)
    batch = _batch([0, 1], torch.tensor([[3] * T, [4] * T]))
    loss = objective(model, batch, epoch=2, device=CPU)
    call = model.calls[-1]
    labels = torch.tensor([[3] * T, [4] * T, [1] * T, [3] * T])  # replicas 1, 3
    scores = call["audio"][..., :1] * model.weight
    assert loss.item() == pytest.approx(sel_loss(scores, labels).item())
    assert call["graph"] == PairedBatch(2, 0)


class _Videos:
    """A dataset of constant videos: video ``i`` has features ``-(i + 1)``, all background."""

    def __getitems__(self, indices):
        return _batch([-(i + 1) for i in indices])


def test_auxiliary_objective_adds_eqs_15_18_on_synthetic_videos():
    model = _Recorder()
    objective = WithAuxiliary(_Videos(), np.array([7, 8]), [0, 2, 4, 6], 4, seed=0)
    first_labels = torch.tensor([[5] * T, [6, 6] + [28] * 8])
    batch = _batch([1, 2], first_labels)
    batch["audio"] = torch.arange(1.0, 21.0).reshape(2, T, 1).expand(2, T, 2).contiguous()
    loss = objective(model, batch, 1, CPU)
    base_call, synthetic_call = model.calls[-2:]
    assert synthetic_call["audio"].shape == (2 * 4, T, 2)
    partners = np.random.default_rng(0).choice([7, 8], size=2)
    second = torch.tensor(-(partners + 1.0))[:, None, None].expand(2, T, 2)
    expected_audio = synthetic_videos(batch["audio"], second, [0, 2, 4, 6], 4).flatten(0, 1)
    assert torch.equal(synthetic_call["audio"], expected_audio)
    base = mil_loss(
        base_call["audio"][..., :1] * model.weight, video_labels_from_segments(first_labels)
    )
    scores = (expected_audio[..., :1] * model.weight).unflatten(0, (2, 4))
    aux = auxiliary_loss(scores, video_labels_from_segments(first_labels), mil_loss)
    assert loss.item() == pytest.approx((base + aux).item())


def test_auxiliary_objective_needs_background_videos():
    with pytest.raises(PipelineError, match="background-only video"):
        WithAuxiliary(_Videos(), np.array([], dtype=np.int64), [0, 2, 4, 6], 4)


def test_slice_label_objective_is_mil_plus_eqs_12_13_by_index():
    model = _Recorder()
    starts = [0, 2, 4, 6]
    targets = np.zeros((3, 4, C), dtype=np.float32)
    targets[:, :, 28] = 1.0
    targets[2, 0] = 0.0
    targets[2, 0, 5] = 1.0
    batch = _batch([2, 0], torch.tensor([[5] * 3 + [28] * 7, [28] * T]))
    batch["audio"] = torch.randn(2, T, 2)
    loss = WithSliceLabels(targets, starts, 4)(model, batch, 1, CPU)
    scores = batch["audio"][..., :1] * model.weight
    weak = mil_loss(scores, video_labels_from_segments(batch["labels"]))
    lr = label_refinement_loss(scores, torch.from_numpy(targets[[2, 0]]), starts, 4, mil_loss)
    assert loss.item() == pytest.approx((weak + lr).item())


def test_a_models_segment_weight_scales_the_cross_entropy():
    model = _Recorder()
    batch = _batch([0], torch.tensor([[5] * T]))
    plain = Supervised()(model, batch, 1, CPU)
    model.seg_weight = 0.25
    assert Supervised()(model, batch, 1, CPU).item() == pytest.approx(0.25 * plain.item())
    objective = WithReplicas(_Pool(), per_video=1, n_originals=1, link=False)
    model.seg_weight = 1.0
    full = objective(model, batch, 1, CPU)
    model.seg_weight = 2.0
    assert objective(model, batch, 1, CPU).item() == pytest.approx(2.0 * full.item())
