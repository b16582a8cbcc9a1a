"""The GPU path on a GPU: data resident on the device, pinned maps, precisions, compile.

Skipped without CUDA (``tests/conftest.py``); ``bench/gpu_check.sh`` runs them.
"""

import numpy as np
import pytest
import torch

from pipeline.data.dataset import AVEDataset, make_loader
from pipeline.models import build_model
from pipeline.training.loop import (
    Trainer,
    fit,
    loader_options,
    make_optimizer,
    make_scheduler,
    place,
    predict,
)
from pipeline.training.objectives import Supervised, WithAuxiliary
from pipeline.training.precision import PRECISIONS
from tests.conftest import train_config

pytestmark = pytest.mark.cuda
CUDA = torch.device("cuda")


def _dpnet(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("dpnet", audio_dim=6, visual_dim=8, hidden=16, blocks=2).to(CUDA)


def test_pooled_data_and_objectives_live_on_the_gpu(tiny_store, tiny_pooled):
    dataset = AVEDataset(tiny_store, "train", pooled=tiny_pooled, background_videos=True)
    objective = WithAuxiliary(dataset, np.arange(40, len(dataset)), [0, 2, 4, 6], 4)
    labels = Supervised(np.zeros((len(dataset), 10), dtype=np.int64))
    assert place([dataset, objective, labels], CUDA)
    batch = dataset.__getitems__([44, 3, 0])
    assert all(batch[k].is_cuda for k in ("audio", "visual", "labels"))
    assert not batch["index"].is_cuda  # the objectives' bookkeeping stays on the host
    assert labels.table.is_cuda


def test_map_batches_come_pinned_from_workers(tiny_store):
    options = loader_options(CUDA, resident=False, workers=2)
    assert options == {"workers": 2, "pin_memory": True}
    batch = next(iter(make_loader(AVEDataset(tiny_store, "train"), 8, **options)))
    assert batch["visual"].is_pinned() and batch["audio"].is_pinned()


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_precision_trains_on_the_gpu(tiny_store, precision, tiny_pooled):
    model = _dpnet()
    train_set = AVEDataset(tiny_store, "train", pooled=tiny_pooled)
    val_set = AVEDataset(tiny_store, "val", pooled=tiny_pooled)
    assert place([train_set, val_set], CUDA)
    config = train_config(lr=1e-2, scheduler="constant", epochs=3)
    optimizer = make_optimizer(config, model.parameters())
    scheduler = make_scheduler(config, optimizer)
    trainer = Trainer(model, Supervised(), optimizer, scheduler, CUDA, precision)
    result = fit(trainer, make_loader(train_set, 8, shuffle=True), make_loader(val_set, 8), 3)
    assert all(np.isfinite(row["train_loss"]) for row in result.history)
    assert trainer.scaler.is_enabled() == (precision == "fp16")
    exact = predict(model, make_loader(val_set, 8), CUDA)
    low = predict(model, make_loader(val_set, 8), CUDA, precision)
    assert np.abs(low - exact).max() < 0.05 * np.abs(exact).max() + 0.05


def test_ave_baseline_runs_its_lstms_under_gpu_autocast(tiny_store):
    torch.manual_seed(0)
    kwargs = {"n_regions": 9, "hidden": 8, "attention_dim": 4, "classifier_hidden": 8}
    model = build_model("ave", audio_dim=6, visual_dim=8, **kwargs).to(CUDA)
    loader = make_loader(AVEDataset(tiny_store, "val"), 4, **loader_options(CUDA, False))
    exact, low = predict(model, loader, CUDA), predict(model, loader, CUDA, "bf16")
    assert np.abs(low - exact).max() < 0.05 * np.abs(exact).max() + 0.05


def test_compiled_model_matches_eager_on_the_gpu(tiny_store, tiny_pooled):
    model = _dpnet().eval()
    batch = AVEDataset(tiny_store, "val", pooled=tiny_pooled).to(CUDA).__getitems__(list(range(8)))
    with torch.no_grad():
        eager = model(batch["audio"], batch["visual"])
        compiled = torch.compile(model)(batch["audio"], batch["visual"])
    assert torch.allclose(eager, compiled, atol=1e-4, rtol=1e-4)
