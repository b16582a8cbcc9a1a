"""Training throughput of the map models PSP and CMRAN, and what bounds a step.

PSP (Zhou et al. 2021) and CMRAN (Xu et al. 2020) read the 7x7x512 visual maps, not the
pooled features: at the real AVE size the maps are 7.7 GiB of float64 (2 MB per video),
read from file batch by batch. This script writes a store of the official per-video shapes
(float64 maps ``(T, 7, 7, 512)``, VGGish audio ``(T, 128)``, contiguous HDF5 like the
official file) with ``--videos`` training videos, then for each model and batch size runs
training steps at the paper's settings (:data:`PAPER`: the models' default dimensions and
the papers' optimiser, Adam; PSP's SEL loss with the AVPS term, CMRAN's relevance and class
losses) over the pipeline's own loader (:func:`pipeline.data.dataset.make_loader`, shuffled,
``--workers`` reading processes) and reports

* videos/s over the timed steps (after ``--warmup`` steps);
* the share of the wall time spent waiting for the next batch (data loading);
* the compute of a step alone (forward, loss, backward, Adam) on a batch already in memory,
  its FLOPs (PyTorch's ``FlopCounterMode``) and FLOP/s;
* what bounds the step: ``data`` when the loader's wait is more than half of the step,
  ``compute`` otherwise; and the two rates apart (the loader's videos per second of waiting,
  the compute's videos per second), so that the bound on faster hardware can be read off:
  once the compute's rate exceeds the loader's (a GPU's is orders of magnitude above a
  CPU's), the loader bounds the step;
* the map reading rate: MB/s of float64 maps over the loader's waiting time;
* with ``--precision-check``, the bf16 outputs against fp32 (:func:`precision_drift`: the
  largest score difference, relative to the largest fp32 score, and the share of segments
  whose predicted class is the same), on the batch in memory, in eval mode.

On a GPU (``--device cuda``) the batches are read into page-locked memory and copied
asynchronously; the step times wait for the device (``torch.cuda.synchronize``).
``bench/gpu_check.sh`` runs it at the papers' batches (``--paper``) when a GPU is lent.

Usage, from the repository root::

    python -m bench.map_models_throughput [--videos 256] [--batches 16 32 64 128 | --paper]
        [--steps 5] [--warmup 1] [--workers 0] [--models psp cmran] [--dir DIR]
        [--device cpu] [--precision-check]

The store goes to a temporary directory unless ``--dir`` names one (reused when complete).
The page cache serves a file just written: for reads from storage, evict it (as
``bench.memory --cold`` does) or pass a ``--dir`` on a cold disk.
"""

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from pipeline.data import store
from pipeline.data.annotations import one_hot
from pipeline.data.dataset import AVEDataset, make_loader
from pipeline.io import atomic_path
from pipeline.losses import sel_loss
from pipeline.models.cmran import CMRAN
from pipeline.models.psp import PSP

# Paper settings (dimensions: the models' defaults, which are the official code's) and the
# papers' batch size and learning rate (official code: PSP 128 at 1e-3; CMRAN 32 at 5e-4).
PAPER = {
    "psp": {"model": PSP, "batch": 128, "lr": 1e-3},
    "cmran": {"model": CMRAN, "batch": 32, "lr": 5e-4},
}
WRITE_BLOCK = 32  # videos per write of the visual file (64 MB)
MB = 1024 * 1024
CPU = torch.device("cpu")


def create_store(root: Path, videos: int, seed: int = 0) -> None:
    """A store of ``videos`` training videos (and one each for val and test), official shapes."""
    n = videos + 2
    rng = np.random.default_rng(seed)
    audio = rng.random((n, store.T, store.OFFICIAL_AUDIO_DIM))  # (n, T, 128) float64
    store.write_array(root / store.AUDIO, store.FEATURE_KEY, audio)
    classes = rng.integers(store.N_CLASSES, size=(n, store.T))  # (n, T)
    store.write_array(root / store.LABELS, store.FEATURE_KEY, one_hot(classes))
    rows = {"train": np.arange(videos), "val": np.array([videos]), "test": np.array([n - 1])}
    for split, split_rows in rows.items():
        store.write_array(root / store.order_file(split), store.ORDER_KEY, split_rows)
    block = rng.random((min(WRITE_BLOCK, n), store.T, *store.OFFICIAL_MAP))  # (b, T, 7, 7, 512)
    with atomic_path(root / store.VISUAL) as tmp, h5py.File(tmp, "w") as h5:
        shape = (n, store.T, *store.OFFICIAL_MAP)
        maps = h5.create_dataset(store.FEATURE_KEY, shape=shape, dtype=np.float64)
        for start in range(0, n, WRITE_BLOCK):
            stop = min(start + WRITE_BLOCK, n)
            maps[start:stop] = block[: stop - start]


def to_device(batch: dict, device: torch.device) -> dict:
    """The batch's tensors on ``device`` (asynchronous copies from page-locked memory)."""
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that a timer reads finished steps."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_loss(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    """The model's SEL loss on a batch: cross-entropy (weighted) plus its feature loss.

    The features are cast to the model's precision (the store's float64 to float32).
    """
    dtype = next(model.parameters()).dtype
    audio, visual, labels = batch["audio"].to(dtype), batch["visual"].to(dtype), batch["labels"]
    scores, features = model(audio, visual, return_features=True)
    weight = getattr(model, "seg_weight", 1.0)
    return weight * sel_loss(scores, labels) + model.feature_loss(features, labels)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict) -> None:
    optimizer.zero_grad(set_to_none=True)
    step_loss(model, batch).backward()
    optimizer.step()


def loader_run(
    model,
    optimizer,
    dataset,
    batch: int,
    steps: int,
    warmup: int,
    workers: int,
    device: torch.device = CPU,
):
    """``(seconds, seconds waiting for data, videos)`` of ``steps`` training steps from the
    loader; ``videos`` counts what the steps really held (an epoch's last batch is short)."""
    pin = device.type == "cuda"
    loader = make_loader(dataset, batch, shuffle=True, workers=workers, pin_memory=pin)
    iterator, wait, start, videos = iter(loader), 0.0, 0.0, 0
    for index in range(warmup + steps):
        if index == warmup:
            synchronize(device)
            wait, start, videos = 0.0, time.perf_counter(), 0
        before = time.perf_counter()
        try:
            data = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            data = next(iterator)
        wait += time.perf_counter() - before
        videos += len(data["index"])
        train_step(model, optimizer, to_device(data, device))
    synchronize(device)
    return time.perf_counter() - start, wait, videos


def compute_run(model, optimizer, data: dict, steps: int) -> float:
    """Mean seconds of a training step on a batch already in memory (on the model's device)."""
    device = data["audio"].device
    train_step(model, optimizer, data)  # warm-up
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(model, optimizer, data)
    synchronize(device)
    return (time.perf_counter() - start) / steps


@torch.no_grad()
def precision_drift(model: torch.nn.Module, data: dict, dtype=torch.bfloat16) -> tuple:
    """``(relative difference, same class share)`` of the scores under autocast ``dtype``.

    The model's eval-mode segment scores on ``data`` in its own precision and under
    ``torch.autocast`` at ``dtype`` on the data's device: the largest absolute difference
    divided by the largest absolute fp32 score, and the share of segments whose argmax
    class is the same.
    """
    model.eval()
    audio, visual = data["audio"].float(), data["visual"].float()
    reference = model(audio, visual).float()  # (B, T, C)
    with torch.autocast(audio.device.type, dtype=dtype):
        low = model(audio, visual).float()  # (B, T, C)
    model.train()
    difference = (low - reference).abs().max() / reference.abs().max()
    same = (low.argmax(-1) == reference.argmax(-1)).float().mean()
    return difference.item(), same.item()


def addmm_inplace_flops(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of ``c.addmm_(a, b)``, which ``FlopCounterMode`` does not count by itself."""
    return 2 * a_shape[0] * a_shape[1] * b_shape[1]


def count_flops(function: Callable[[], object]) -> int:
    """Matrix-product FLOPs of one call of ``function``, counted from the operator shapes.

    PyTorch's ``FlopCounterMode``, with the in-place ``addmm_`` of
    :func:`~pipeline.models.map_layers.relu_mlp`'s backward added to its formulas.
    """
    mapping = {torch.ops.aten.addmm_: addmm_inplace_flops}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        function()
    return counter.get_total_flops()


def step_flops(model: torch.nn.Module, data: dict) -> int:
    """FLOPs of one forward and backward (:func:`count_flops`)."""
    flops = count_flops(lambda: step_loss(model, data).backward())
    model.zero_grad(set_to_none=True)
    return flops


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=256)
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--paper", action="store_true", help="each model at its paper's batch")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--models", nargs="+", choices=sorted(PAPER), default=sorted(PAPER))
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--precision-check", action="store_true", help="bf16 outputs vs fp32")
    return parser.parse_args(argv)


def run(root: Path, args: argparse.Namespace) -> None:
    dataset = AVEDataset(root, "train")
    device = torch.device(args.device)
    video_mb = store.T * int(np.prod(store.OFFICIAL_MAP)) * 8 / MB  # one video's float64 maps
    print(f"threads: {torch.get_num_threads()}, torch {torch.__version__}, workers {args.workers}")
    print(f"device: {device}, store: {len(dataset)} training videos, maps {video_mb:.2f} MB each")
    header = (
        "model   batch  videos/s  data %  step ms  compute ms  GFLOP/step  GFLOP/s  "
        "loader v/s  maps MB/s  compute v/s  bound"
    )
    print(header)
    drifts = []
    for name in args.models:
        settings = PAPER[name]
        for batch in [settings["batch"]] if args.paper else args.batches:
            torch.manual_seed(0)
            model = settings["model"]().to(device)
            model.train()
            optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
            seconds, wait, videos = loader_run(
                model, optimizer, dataset, batch, args.steps, args.warmup, args.workers, device
            )
            data = dataset.__getitems__(list(range(min(batch, len(dataset)))))
            data = to_device(data, device)
            compute = compute_run(model, optimizer, data, args.steps)
            flops = step_flops(model, data)
            share = wait / seconds
            loader_rate = videos / max(wait, 1e-9)  # videos per second of waiting
            bound = "data" if share > 0.5 else "compute"
            paper = "*" if batch == settings["batch"] else " "
            print(
                f"{name:<6} {batch:>5}{paper} {videos / seconds:>8.1f} "
                f"{100 * share:>6.0f}  {1e3 * seconds / args.steps:>7.0f}  "
                f"{1e3 * compute:>10.0f}  {flops / 1e9:>10.1f}  {flops / compute / 1e9:>7.1f}  "
                f"{loader_rate:>10.1f}  {loader_rate * video_mb:>9.0f}  "
                f"{len(data['index']) / compute:>11.1f}  {bound}",
                flush=True,
            )
            if args.precision_check:
                drifts.append((name, batch, *precision_drift(model, data)))
    print("* = the paper's batch size")
    for name, batch, difference, same in drifts:
        print(
            f"bf16 vs fp32, {name} batch {batch}: largest score difference {difference:.2e} "
            f"of the largest score, same class in {100 * same:.2f} % of segments"
        )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        if not (args.dir / store.VISUAL).exists():
            create_store(args.dir, args.videos)
        run(args.dir, args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        create_store(Path(tmp), args.videos)
        run(Path(tmp), args)


if __name__ == "__main__":
    main()
