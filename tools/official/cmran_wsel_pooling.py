"""CMRAN WSEL: does pooling the relevance in log space change results? (issue 31, item 2)

Trains CMRAN on WSEL on a synthetic store with ``model.wsel_pooling`` ``log`` (ours, the
default) and ``official`` (the official code's :math:`\\mathrm{softmax}(\\max_t \\sigma(e_t) k)`)
over the same seeds, and prints each row's test metrics over the seeds and the paired
difference official - log with its bootstrap CI (:mod:`pipeline.evaluation.stats`: the same
video and seed draws for both rows). Everything else is equal: data, seeds, widths, the
optimiser (CMRAN's Adam, lr 5e-4), the epoch chosen on val, and the segment decision rule
at test time (:func:`pipeline.models.cmran.segment_scores`).

To stay within minutes on a CPU, the store is small (``--visual-dim`` 64 channels on 7x7
maps) and so is the model (width 64, feed-forward 128); the CI is over the 402 test videos
and the seeds. Usage (repository root)::

    OMP_NUM_THREADS=1 python tools/official/cmran_wsel_pooling.py --seeds 0 1 2 --epochs 6
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from pipeline.config.params import load_params  # noqa: E402
from pipeline.data import store  # noqa: E402
from pipeline.data.dataset import AVEDataset, make_loader  # noqa: E402
from pipeline.data.synthetic import generate_synthetic  # noqa: E402
from pipeline.evaluation.stats import HEADLINE, paired_difference, seed_summary  # noqa: E402
from pipeline.models.cmran import CMRAN  # noqa: E402
from pipeline.training.loop import (  # noqa: E402
    Trainer,
    fit,
    make_optimizer,
    make_scheduler,
    predict,
    set_seed,
)
from pipeline.training.objectives import weak_loss  # noqa: E402

SMALL = {
    "hidden": 64,
    "heads": 4,
    "av_heads": 2,
    "feedforward": 128,
    "attention_hidden": 64,
    "bottleneck": 32,
}


def train_one(root: Path, pooling: str, seed: int, epochs: int) -> tuple[np.ndarray, float]:
    """Test predictions ``(n, T)`` of one run and its wall time in seconds."""
    start = time.perf_counter()
    config = load_params(("train",), typed=True)["train"].model_copy(
        update={
            "seed": seed,
            "epochs": epochs,
            "batch_size": 32,
            "lr": 5e-4,
            "scheduler": "constant",
            "background_videos": True,
        }
    )
    set_seed(seed)
    train_set = AVEDataset(root, "train", background_videos=True)
    val_set, test_set = AVEDataset(root, "val"), AVEDataset(root, "test")
    model = CMRAN(
        audio_dim=store.read_array(root / store.AUDIO).shape[-1],
        visual_dim=store.read_array(root / store.VISUAL).shape[-1],
        wsel_pooling=pooling,
        **SMALL,
    )
    optimizer = make_optimizer(config, model.parameters())
    trainer = Trainer(
        model, weak_loss, optimizer, make_scheduler(config, optimizer), torch.device("cpu")
    )
    result = fit(
        trainer,
        make_loader(train_set, 32, shuffle=True, seed=seed),
        make_loader(val_set, 64),
        epochs,
        name=f"{pooling} seed {seed}",
    )
    model.load_state_dict(result.best_state)
    scores = predict(model, make_loader(test_set, 64), torch.device("cpu"))  # (n, T, C)
    return scores.argmax(axis=-1), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--n-train", type=int, default=320)
    parser.add_argument("--visual-dim", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        generate_synthetic(
            root, n_train=args.n_train, n_val=60, n_test=402, visual_dim=args.visual_dim
        )
        labels = store.segment_labels(root)[store.split_order(root, "test")]  # (n, T)
        runs = {"log": [], "official": []}
        seconds = {"log": 0.0, "official": 0.0}
        for seed in args.seeds:
            for pooling in runs:
                predictions, wall = train_one(root, pooling, seed, args.epochs)
                runs[pooling].append(predictions)
                seconds[pooling] += wall
                print(f"{pooling} seed {seed}: accuracy {np.mean(predictions == labels):.4f}")
    for pooling, row in runs.items():
        summary = seed_summary(labels, row)
        cells = ", ".join(
            f"{m} {summary[m]['mean']:.4f} [{summary[m]['ci_low']:.4f}, "
            f"{summary[m]['ci_high']:.4f}]"
            for m in HEADLINE
        )
        print(f"{pooling}: {cells}; {seconds[pooling] / len(args.seeds):.0f} s per run")
    diff = paired_difference(labels, runs["official"], runs["log"])
    for metric, cell in diff.items():
        print(
            f"official - log {metric}: {cell['diff']:+.4f} "
            f"[{cell['ci_low']:+.4f}, {cell['ci_high']:+.4f}]"
        )


if __name__ == "__main__":
    main()
