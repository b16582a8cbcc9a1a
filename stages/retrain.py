"""retrain stage (Step 3 of seed 004 §4.2): train again from scratch with the pseudo-labels.

Reads ``model``, ``train`` (its ``epochs`` replaced by ``refine.retrain_epochs``),
``data/ave/`` and ``data/refined/labels.npz``; writes
``data/models/wsel_refined.pt``, ``metrics/train/wsel_refined.json`` and the dvclive log
``metrics/train_log/wsel_refined/``. Slice labels (``refined``, ``dummy``) train with
:math:`L_{MIL} + L_{LR}` (eqs 12-13); segment pseudo-labels (``pseudo``, the +PL baseline)
train fully supervised, "taken as ground truth for fully-supervised re-training" (§5.3).
Background-only videos (``train.background_videos``) keep their known labels: background on
every slice and segment.
"""

import numpy as np
import torch

from pipeline import paths
from pipeline.data import store
from pipeline.data.dataset import AVEDataset
from pipeline.errors import PipelineError, run_stage
from pipeline.models import MODELS
from pipeline.objectives import Supervised, WithSliceLabels
from pipeline.params import load_params
from pipeline.refine import load_slice_labels, slice_label_vectors
from pipeline.runner import model_section, train_and_save, train_section

TASK = "wsel_refined"
SECTIONS = ("model", "train", "refine")


def main(params: dict) -> None:
    name, hyper = model_section(params)
    config = dict(train_section(params))
    # seed 004 §5.1: Step 1 200 epochs, Step 3 100
    config["epochs"] = params["refine"]["retrain_epochs"]
    refined = load_slice_labels(paths.REFINED)
    pooled = paths.pooled_features(MODELS[name].needs_maps)
    train_set = AVEDataset(
        paths.STORE, "train", pooled, background_videos=bool(config["background_videos"])
    )
    if not np.array_equal(refined.rows, store.split_order(paths.STORE, "train")):
        raise PipelineError(
            f"{paths.REFINED}: labels were made for other training videos than those of "
            f"{paths.STORE} (rerun the refine stage)"
        )
    m = train_set.n_background_videos
    if refined.kind == "pseudo":
        background = np.full((m, store.T), store.BACKGROUND, dtype=np.int64)
        objective = Supervised(np.concatenate([refined.segments, background]))
    else:
        sets = np.concatenate([refined.sets, np.zeros((m, *refined.sets.shape[1:]), bool)])
        vectors = slice_label_vectors(torch.from_numpy(sets)).numpy()  # (n + m, T1, C)
        objective = WithSliceLabels(vectors, refined.starts, refined.window)
    metrics = {"labels": refined.kind, "background_videos": m}
    inputs = (paths.STORE, paths.REFINED)
    settings = {"retrain_epochs": config["epochs"]}
    train_and_save(TASK, name, hyper, config, train_set, objective, metrics, settings, inputs)


if __name__ == "__main__":
    run_stage(lambda: main(load_params(SECTIONS)))
