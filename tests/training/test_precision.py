"""The GPU fast path, checked on the CPU: precision, data placement, loaders, compile."""

import numpy as np
import pytest
import torch

from pipeline.data import store
from pipeline.data.composed import ComposedDataset, identity_sources
from pipeline.data.dataset import AVEDataset, make_loader
from pipeline.models import build_model
from pipeline.models.rgct import _attend
from pipeline.refinement.labels import estimate_slice_labels
from pipeline.training.loop import (
    Trainer,
    fit,
    loader_options,
    make_optimizer,
    make_scheduler,
    place,
    predict,
)
from pipeline.training.objectives import Supervised, WithAuxiliary, WithReplicas, WithSliceLabels
from pipeline.training.precision import PRECISIONS, autocast, make_scaler
from tests.conftest import train_config

CPU = torch.device("cpu")


def _model(tiny_store, name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    if name == "ave":
        kwargs = {"n_regions": 9, "hidden": 8, "attention_dim": 4, "classifier_hidden": 8}
        return build_model("ave", audio_dim=6, visual_dim=8, **kwargs)
    if name == "edrnet":
        return build_model("edrnet", audio_dim=6, visual_dim=8, hidden=16, visual_kernel=3)
    return build_model(name, audio_dim=6, visual_dim=8, hidden=16, blocks=2)


def _trainer(model, precision: str = "fp32", compile: bool = False) -> Trainer:
    config = train_config(lr=1e-2, scheduler="constant", epochs=2)
    optimizer = make_optimizer(config, model.parameters())
    scheduler = make_scheduler(config, optimizer)
    return Trainer(model, Supervised(), optimizer, scheduler, CPU, precision, compile)


def test_autocast_lowers_matrix_products_only_when_asked():
    layer = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with autocast(CPU, "fp32"):
        assert layer(x).dtype == torch.float32
    with autocast(CPU, "bf16"):
        assert layer(x).dtype == torch.bfloat16
    with autocast(CPU, "fp16"):
        assert layer(x).dtype == torch.float16


def test_only_fp16_scales_gradients():
    assert [make_scaler(CPU, p).is_enabled() for p in PRECISIONS] == [False, False, True]


LOW_PRECISION_CASES = [
    (name, precision) for precision in ("bf16", "fp16") for name in ("ave", "dpnet", "edrnet")
]


@pytest.mark.parametrize(("name", "precision"), LOW_PRECISION_CASES)
def test_low_precision_predictions_stay_close_to_fp32(tiny_store, tiny_pooled, name, precision):
    model = _model(tiny_store, name)
    pooled = None if model.needs_maps else tiny_pooled
    loader = make_loader(AVEDataset(tiny_store, "val", pooled=pooled), batch_size=4)
    exact = predict(model, loader, CPU)
    low = predict(model, loader, CPU, precision)
    assert low.dtype == np.float32 and low.shape == exact.shape
    assert np.isfinite(low).all()  # DPNet's attention logits once overflowed fp16
    # bf16 keeps 8 bits of mantissa: a few per cent of the largest score, which an untrained
    # model reaches in the hundreds on the synthetic maps (scaled like VGG pool5 values)
    assert np.abs(low - exact).max() < 0.1 * np.abs(exact).max() + 0.05
    assert np.mean(low.argmax(-1) == exact.argmax(-1)) > 0.8


def test_rgct_attention_stays_finite_in_fp16_where_its_logits_exceed_fp16s_range():
    # q . k over 16 features of about 300 is about 1.4e6 / 4 = 3.6e5 > 65504, fp16's largest
    torch.manual_seed(0)
    q, k, v = (300 + 10 * torch.randn(2, 3, 16) for _ in range(3))  # (B, S, D)
    present = torch.tensor([[True, True, False], [True, False, False]])  # (B, S)
    exact = _attend(q, k, v, present)  # (B, D)
    assert (q[0] @ k[0].T / 4).max() > torch.finfo(torch.float16).max
    with autocast(CPU, "fp16"):
        low = _attend(q.half(), k.half(), v.half(), present)
    assert low.dtype == torch.float16 and torch.isfinite(low).all()
    torch.testing.assert_close(low.float(), exact, rtol=2e-3, atol=0.5)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_precision_trains_on_the_cpu(tiny_store, precision, tiny_pooled):
    model = _model(tiny_store, "dpnet")
    train = make_loader(AVEDataset(tiny_store, "train", pooled=tiny_pooled), 8, shuffle=True)
    val = make_loader(AVEDataset(tiny_store, "val", pooled=tiny_pooled), 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = _trainer(model, precision)
    result = fit(trainer, train, val, 2)
    assert all(np.isfinite(row["train_loss"]) for row in result.history)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(v.dtype == before[k].dtype for k, v in model.state_dict().items())
    if precision == "fp16":
        assert trainer.scaler.get_scale() > 0 and trainer.scaler.state_dict()


def test_refine_pseudo_labels_use_the_training_precision(tiny_store, tiny_pooled):
    model = _model(tiny_store, "dpnet").eval()
    dataset = AVEDataset(tiny_store, "train", pooled=tiny_pooled, background_videos=True)
    videos = np.arange(12)
    partners = np.full(12, len(dataset) - 1)
    args = (model, dataset, videos, partners, [0, 2, 4, 6], 4, 0.05, 5, CPU)
    exact = estimate_slice_labels(*args)
    low = estimate_slice_labels(*args, "bf16")
    assert low.shape == exact.shape == (12, 4, store.N_CLASSES)
    assert np.mean(low == exact) > 0.95


def test_compiled_model_trains_and_saves_the_plain_state(tiny_store, monkeypatch, tiny_pooled):
    # Inductor takes minutes on a small CPU; the "eager" backend checks the wiring (the
    # compiled module runs the steps, the saved state has the plain module's keys).
    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model: compile_(model, backend="eager"))
    model = _model(tiny_store, "dpnet")
    trainer = _trainer(model, compile=True)
    assert isinstance(trainer.runner, torch._dynamo.eval_frame.OptimizedModule)
    train = make_loader(AVEDataset(tiny_store, "train", pooled=tiny_pooled), 20, shuffle=True)
    val = make_loader(AVEDataset(tiny_store, "val", pooled=tiny_pooled), 20)
    result = fit(trainer, train, val, 1)
    assert set(result.best_state) == set(model.state_dict())


def test_datasets_report_their_bytes_and_keep_their_batches_where_they_live(
    tiny_store, tiny_pooled
):
    dataset = AVEDataset(tiny_store, "train", pooled=tiny_pooled, background_videos=True)
    n = len(dataset)
    assert dataset.nbytes == n * store.T * (6 + 8) * 4 + n * store.T * 8  # audio, pooled, labels
    before = dataset.__getitems__([44, 3, 0])
    assert place([dataset, Supervised(), lambda *a: None], CPU)
    after = dataset.__getitems__([44, 3, 0])
    for key in before:
        assert torch.equal(before[key], after[key])
    rows = store.split_order(tiny_store, "train")
    labels = store.segment_labels(tiny_store)[rows]
    composed = ComposedDataset(tiny_store, identity_sources(rows), labels, pooled=tiny_pooled)
    total = 60 * store.T * (6 + 8) * 4 + len(rows) * store.T * 8  # the whole store
    assert composed.nbytes == total and composed.to(CPU) is composed


def test_objectives_holding_data_can_be_placed(tiny_store, tiny_pooled):
    dataset = AVEDataset(tiny_store, "train", pooled=tiny_pooled, background_videos=True)
    tables = [
        Supervised(np.zeros((3, store.T), dtype=np.int64)),
        WithSliceLabels(np.zeros((3, 4, store.N_CLASSES), dtype=np.float32), [0, 2, 4, 6], 4),
    ]
    assert [t.nbytes for t in tables] == [3 * store.T * 8, 3 * 4 * store.N_CLASSES * 4]
    holders = [
        WithReplicas(dataset, 1, 40, True),
        WithAuxiliary(dataset, np.arange(40, len(dataset)), [0, 2], 4),
    ]
    assert all(h.nbytes == dataset.nbytes for h in holders)
    assert place([*tables, *holders], CPU)


def test_auxiliary_partner_draws_resume_from_their_state(tiny_store, tiny_pooled):
    dataset = AVEDataset(tiny_store, "train", pooled=tiny_pooled, background_videos=True)
    objective = WithAuxiliary(dataset, np.arange(40, len(dataset)), [0, 2], 4, seed=3)
    objective.rng.integers(10, size=5)
    state = objective.state_dict()
    drawn = objective.rng.integers(10, size=5)
    fresh = WithAuxiliary(dataset, np.arange(40, len(dataset)), [0, 2], 4, seed=3)
    fresh.load_state_dict(state)
    assert np.array_equal(fresh.rng.integers(10, size=5), drawn)


def test_map_loaders_use_workers_and_give_the_same_batches(tiny_store):
    dataset = AVEDataset(tiny_store, "train")
    options = loader_options(CPU, resident=False, workers=2)
    assert options == {"workers": 2, "pin_memory": False}
    assert loader_options(CPU, resident=True, workers=2) == {}
    alone = list(make_loader(dataset, 7, shuffle=True, seed=1))
    parallel = list(make_loader(dataset, 7, shuffle=True, seed=1, **options))
    assert len(alone) == len(parallel)
    for a, b in zip(alone, parallel, strict=True):
        assert all(torch.equal(a[key], b[key]) for key in a)
