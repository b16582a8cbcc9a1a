"""refine stage (Step 2 of seed 004 §4.2): slice-level pseudo-labels of the training videos.

Reads ``refine.{window,stride,tau,labels}``, ``train.{seed,device,batch_size,precision}``,
``data/ave/`` and the base model ``data/models/wsel.pt``; writes ``data/refined/labels.npz``
and ``metrics/refine.json``: the pseudo-labels' slice-level precision, recall, F1 and
exact-match rate against the training split's segment labels (which weak training never
sees). ``refine.labels`` chooses the labels of Table 3's rows: ``refined`` (eqs 9-11, +LR),
``dummy`` (the video label on every slice, +LR_dummy) or ``pseudo`` (the base model's
segment predictions, +PL).
"""

import numpy as np
import torch

from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.config.schema import validate_params
from pipeline.data import store
from pipeline.data.dataset import AVEDataset, make_loader
from pipeline.device import resolve_device
from pipeline.errors import PipelineError, run_stage
from pipeline.io import write_json
from pipeline.refinement.labels import (
    SliceLabels,
    dummy_slice_labels,
    estimate_slice_labels,
    pseudo_label_quality,
    pseudo_segment_labels,
    save_slice_labels,
    slice_truth,
)
from pipeline.refinement.slices import slice_starts
from pipeline.training.checkpoint import load_checkpoint
from pipeline.training.loop import loader_options, place, predict
from pipeline.training.objectives import weak_labels

TRAIN_READ = ("seed", "device", "batch_size", "precision", "deterministic_cpu")
SECTIONS = ("refine", "train")


def _partners(dataset: AVEDataset, n: int, seed: int) -> np.ndarray:
    """A random background-only video for each of the first ``n`` videos (seed 004 §5)."""
    if dataset.n_background_videos == 0:
        raise PipelineError(
            f"{paths.STORE}: refine.labels=refined needs background-only videos "
            f"({store.LABELS_NOISY} and its features), found none"
        )
    return np.random.default_rng(seed).integers(n, len(dataset), size=n)


def main(params: dict) -> None:
    params = validate_params(params, SECTIONS, typed=True)
    config, train = params["refine"], params["train"]
    kind = config.labels
    starts = slice_starts(store.T, config.window, config.stride)
    device = resolve_device(train.device)
    model, _ = load_checkpoint(paths.checkpoint("wsel"), device)
    pooled = paths.pooled_features(model.needs_maps)
    dataset = AVEDataset(paths.STORE, "train", pooled, background_videos=True)
    resident = not model.needs_maps and place([dataset], device)
    n = len(dataset) - dataset.n_background_videos
    truth_segments = dataset.labels[:n]  # (n, T): never seen by weak training
    video_labels = weak_labels(torch.from_numpy(truth_segments))  # (n, C)
    segments = np.zeros((n, 0), dtype=np.int64)
    if kind == "refined":
        sets = estimate_slice_labels(
            model,
            dataset,
            np.arange(n),
            _partners(dataset, n, train.seed),
            starts,
            config.window,
            config.tau,
            train.batch_size,
            device,
            train.precision,
        )
    elif kind == "dummy":
        sets = dummy_slice_labels(video_labels, len(starts)).numpy() > 0
        sets[..., store.BACKGROUND] = False
    else:
        subset = torch.utils.data.Subset(dataset, range(n))
        loader = make_loader(subset, train.batch_size, **loader_options(device, resident))
        scores = torch.from_numpy(predict(model, loader, device, train.precision))  # (n, T, C)
        segments = pseudo_segment_labels(scores, video_labels).numpy()  # (n, T)
        sets = slice_truth(segments, starts, config.window)
    truth = slice_truth(truth_segments, starts, config.window)
    rows = store.split_order(paths.STORE, "train")
    save_slice_labels(paths.REFINED, SliceLabels(kind, rows, starts, config.window, sets, segments))
    quality = pseudo_label_quality(sets, truth)
    if kind == "pseudo":
        quality["segment_accuracy"] = float(np.mean(segments == truth_segments))
    write_json(paths.REFINE_METRICS, {"labels": kind, "tau": config.tau, **quality})
    print(f"refine ({kind}): slice F1 {quality['f1']}, exact match {quality['exact_match']}")


if __name__ == "__main__":
    run_stage(lambda: main(load_params(SECTIONS, typed=True)))
