"""avvp_refine stage (Step 2 of seed 004 on the AVVP model, HAN by default): per-modality
slice labels of LLP's videos.

Reads ``avvp.refine.{window,stride,tau}``, ``train.{seed,device}``, ``avvp.evaluate.batch_size``,
``data/llp/``, ``data/avvp_model_code.json`` and the Step 1 checkpoint
``data/models/avvp_han.pt`` (any registered AVVP model; :mod:`pipeline.training.checkpoint`);
writes
``data/avvp_refined/labels.npz`` (:mod:`pipeline.avvp.refine`) and
``metrics/avvp/refine.json``: the share of positive slice labels per modality and, since
LLP's training videos have no dense labels, the quality of the same estimate on the
validation videos (partners drawn among them) against their dense labels.
"""

import numpy as np

from pipeline.avvp.refine import (
    AVVPSliceLabels,
    draw_partners,
    estimate_slice_labels,
    save_avvp_slice_labels,
    slice_quality,
    slice_truth,
)
from pipeline.avvp.train import load_data
from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.device import resolve_device
from pipeline.errors import run_stage
from pipeline.io import write_json
from pipeline.refinement.slices import slice_starts
from pipeline.training.checkpoint import load_checkpoint

PARAMS = (
    "avvp.refine.window",
    "avvp.refine.stride",
    "avvp.refine.tau",
    "avvp.evaluate.batch_size",
    "train.seed",
    "train.device",
)


def _estimate(
    model, data, config: dict, starts: list[int], seed: int, batch_size: int
) -> np.ndarray:
    partners = draw_partners(data.weak.cpu().numpy(), seed)
    return estimate_slice_labels(
        model,
        data.streams,
        data.weak,
        partners,
        starts,
        config["window"],
        config["tau"],
        batch_size,
    )


def main(params: dict) -> None:
    config, seed = params["avvp"]["refine"], params["train"]["seed"]
    batch_size = params["avvp"]["evaluate"]["batch_size"]
    device = resolve_device(params["train"]["device"])
    model, _ = load_checkpoint(paths.avvp_checkpoint("han"), device, "avvp")
    starts = slice_starts(10, config["window"], config["stride"])
    train = load_data(paths.LLP_STORE, "train").to(device)
    labels = _estimate(model, train, config, starts, seed, batch_size)
    save_avvp_slice_labels(
        paths.AVVP_REFINED,
        AVVPSliceLabels(np.array(train.names), np.array(starts), config["window"], labels),
    )
    val = load_data(paths.LLP_STORE, "val").to(device)
    val_labels = _estimate(model, val, config, starts, seed, batch_size)
    quality = slice_quality(val_labels, slice_truth(val.dense, starts, config["window"]))
    positive = {m: float(labels[:, :, i].mean()) for i, m in enumerate(("audio", "visual"))}
    write_json(
        paths.AVVP_REFINE_METRICS,
        {
            "tau": config["tau"],
            "slices": int(labels.shape[0] * labels.shape[1]),
            "positive_share": positive,
            "val_quality": quality,
        },
    )
    print(
        f"avvp refine: {labels.shape[0]} videos x {len(starts)} slices; "
        f"val slice F1 {quality['all_f1']}"
    )


if __name__ == "__main__":
    run_stage(lambda: main(load_params(("avvp", "train"))))
