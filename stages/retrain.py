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

from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.config.schema import validate_params
from pipeline.data import store
from pipeline.data.dataset import AVEDataset
from pipeline.errors import PipelineError, run_stage
from pipeline.losses import slice_label_vectors
from pipeline.refinement.labels import load_slice_labels
from pipeline.training.choice import ModelChoice
from pipeline.training.loop import set_seed
from pipeline.training.objectives import Supervised, WithSliceLabels
from pipeline.training.runner import train_and_save

TASK = "wsel_refined"
SECTIONS = ("model", "train", "refine")


def main(params: dict) -> None:
    params = validate_params(params, SECTIONS, typed=True)
    model = ModelChoice.of(params["model"])
    # seed 004 §5.1: Step 1 200 epochs, Step 3 100
    config = params["train"].model_copy(update={"epochs": params["refine"].retrain_epochs})
    set_seed(config.seed)
    refined = load_slice_labels(paths.REFINED)
    train_set = AVEDataset(
        paths.STORE, "train", model.pooled, background_videos=config.background_videos
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
    settings = {"retrain_epochs": config.epochs}
    train_and_save(TASK, model, config, train_set, objective, metrics, settings, inputs)


if __name__ == "__main__":
    run_stage(lambda: main(load_params(SECTIONS, typed=True)))
