"""Cost of the augmentation chain: databases, replicas, SMB fusion and linked training steps.

1. On the real AVE label structure (``../shared/ave-reference``; else random single-event
   labels of the same size, 3339 training videos), the seconds to build the sub-event and
   state databases, ``--replicas`` replicas per video and ``--smb`` SMB videos per class.
2. DPNet training steps (forward, cross-entropy, backward, Adam) on a batch of ``--batch``
   originals: alone, with one replica each (Replicate), and with linked graphs (Link) by
   the dense path (:class:`~pipeline.models.graph.PairedBatch`) and by message passing on
   the explicit edges, in milliseconds per step and originals per second.

Usage, from the repository root::

    python -m bench.augmentation [--batch 48] [--hidden 128] [--steps 10]
"""

import argparse
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from pipeline.augment.database import build_state_database, build_subevent_database
from pipeline.augment.replicas import make_replicas
from pipeline.augment.smb import event_spans, smb_fusion
from pipeline.losses import sel_loss
from pipeline.models import build_model
from pipeline.models.graph import PairedBatch

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "ave-reference"
T, N_TRAIN = 10, 3339


def training_labels() -> tuple[np.ndarray, np.ndarray, str]:
    """``(labels (n, T), rows (n,), source)`` of the real training split, or a stand-in."""
    if (REFERENCE / "labels_closs.h5").is_file():
        with (
            h5py.File(REFERENCE / "labels_closs.h5") as closs,
            h5py.File(REFERENCE / "mil_labels.h5") as mil,
            h5py.File(REFERENCE / "train_order.h5") as order,
        ):
            foreground = closs["avadataset"][()] == 1
            classes = mil["avadataset"][()].argmax(axis=1)
            rows = order["order"][()]
        labels = np.where(foreground, classes[:, None], 28)[rows]
        return labels, rows, "real AVE training split"
    rng = np.random.default_rng(0)
    labels = np.full((N_TRAIN, T), 28)
    for video in labels:
        first = rng.integers(0, 8)
        video[first : rng.integers(first + 2, T + 1)] = rng.integers(0, 28)
    return labels, np.arange(N_TRAIN), "random single-event labels (reference absent)"


def timed(function, *args, **kwargs):
    """``(result, seconds)`` of one call."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def bench_databases(replicas: int, smb: int) -> None:
    labels, rows, source = training_labels()
    print(f"labels: {source}, {len(rows)} videos")
    subevents, seconds = timed(build_subevent_database, labels, rows)
    print(f"sub-event database: {len(subevents)} records in {seconds:.2f} s")
    states, seconds = timed(build_state_database, labels, rows)
    print(f"state database: {len(states)} records in {seconds:.2f} s")
    pool, seconds = timed(make_replicas, labels, rows, subevents, replicas, 0)
    print(f"replicas: {len(pool)} ({replicas} per video) in {seconds:.2f} s")
    fused, seconds = timed(smb_fusion, states, smb, 0, layouts=event_spans(labels))
    print(f"SMB fusion: {len(fused)} videos ({smb} per class) in {seconds:.2f} s")


def step_ms(model, audio, visual, labels, steps: int, **kwargs) -> float:
    """Milliseconds per training step (after two warm-up steps)."""
    optimizer = torch.optim.Adam(model.parameters())
    for i in range(steps + 2):
        if i == 2:
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        sel_loss(model(audio, visual, **kwargs), labels).backward()
        optimizer.step()
    return 1000 * (time.perf_counter() - start) / steps


def bench_linking(batch: int, hidden: int, steps: int) -> None:
    torch.manual_seed(0)
    model = build_model("dpnet", hidden=hidden)
    audio, visual = torch.randn(2 * batch, T, 128), torch.randn(2 * batch, T, 512)
    labels = torch.randint(0, 29, (2 * batch, T))
    cases = {
        "originals only": (slice(0, batch), {}),
        "+ Replicate": (slice(None), {}),
        "+ Link (dense PairedBatch)": (slice(None), {"graph": PairedBatch(batch, 0)}),
        "+ Link (message passing)": (slice(None), {"graph": PairedBatch(batch, 0).edges(T)}),
    }
    print(
        f"DPNet training step, {batch} originals, d = {hidden}, {torch.get_num_threads()} threads"
    )
    for name, (part, kwargs) in cases.items():
        ms = step_ms(model, audio[part], visual[part], labels[part], steps, **kwargs)
        print(f"  {name:28s} {ms:8.1f} ms/step  {1000 * batch / ms:7.1f} originals/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--smb", type=int, default=250)
    args = parser.parse_args()
    bench_databases(args.replicas, args.smb)
    bench_linking(args.batch, args.hidden, args.steps)


if __name__ == "__main__":
    main()
