"""train stage: fit ``model.name`` on SEL or WSEL and keep the best checkpoint on val.

``train@sel`` reads ``model``, ``train`` and ``augment.{replicate,link,smb_per_class}``,
``data/ave/`` and ``data/augmented/``: the training videos plus, when
``augment.smb_per_class > 0``, the SMB-fused videos (seed 002 Algorithm 1), and with
``augment.replicate`` one replica per original in each mini-batch, linked when
``augment.link`` and the model has a graph layer (seed 001 §3.4).

``train@wsel`` (Step 1 of seed 004) reads ``model``, ``train`` and
``refine.{auxiliary,window,stride}``: the MIL loss on video labels, plus the auxiliary
objective of §4.3 when ``refine.auxiliary``.

Writes ``data/models/<task>.pt``, ``metrics/train/<task>.json`` and the per-epoch dvclive
log ``metrics/train_log/<task>/``; an interrupted run resumes from ``.resume/<task>.pt``.
Usage: ``python -m stages.train sel|wsel``.
"""

import sys

import numpy as np

from pipeline.augment.compositions import load_compositions
from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.config.schema import Augment, Refine, Train, validate_params
from pipeline.data import store
from pipeline.data.composed import ComposedDataset, identity_sources
from pipeline.data.dataset import AVEDataset
from pipeline.errors import run_stage
from pipeline.refinement.slices import slice_starts
from pipeline.training.choice import ModelChoice
from pipeline.training.loop import set_seed
from pipeline.training.objectives import Supervised, WithAuxiliary, WithReplicas, weak_loss
from pipeline.training.runner import train_and_save
from stages.common import task_argument


def _sel(model: ModelChoice, config: Train, augment: Augment) -> None:
    rows = store.split_order(paths.STORE, "train")
    sources, labels = identity_sources(rows), store.segment_labels(paths.STORE)[rows]
    n_smb = 0
    if augment.smb_per_class > 0:
        smb = load_compositions(paths.SMB)
        sources, labels = (
            np.concatenate([sources, smb.sources]),
            np.concatenate([labels, smb.labels]),
        )
        n_smb = len(smb.labels)
    train_set = ComposedDataset(paths.STORE, sources, labels, model.pooled)
    objective = Supervised()
    linked = False
    if augment.replicate:
        pool = load_compositions(paths.REPLICAS)
        per_video = len(pool.labels) // len(rows)
        replicas = ComposedDataset(paths.STORE, pool.sources, pool.labels, model.pooled)
        objective = WithReplicas(replicas, per_video, len(rows), augment.link)
        linked = augment.link and model.cls.uses_graph
    metrics = {
        "smb_videos": n_smb,
        "replicate": augment.replicate,
        "link_applied": linked,
        "link_ignored": augment.replicate and augment.link and not linked,
    }
    inputs = (paths.STORE, paths.AUGMENTED)
    settings = augment.model_dump(exclude_unset=True)
    train_and_save("sel", model, config, train_set, objective, metrics, settings, inputs)


def _wsel(model: ModelChoice, config: Train, refine: Refine) -> None:
    train_set = AVEDataset(
        paths.STORE, "train", model.pooled, background_videos=config.background_videos
    )
    objective = weak_loss
    if refine.auxiliary:
        # partners: the background-only videos, whether or not they are trained on
        partners = AVEDataset(paths.STORE, "train", model.pooled, background_videos=True)
        n = len(partners) - partners.n_background_videos
        objective = WithAuxiliary(
            partners,
            np.arange(n, len(partners)),
            slice_starts(store.T, refine.window, refine.stride),
            refine.window,
            config.seed,
        )
    metrics = {"background_videos": train_set.n_background_videos, "auxiliary": refine.auxiliary}
    settings = refine.model_dump(exclude_unset=True)
    train_and_save("wsel", model, config, train_set, objective, metrics, settings, [paths.STORE])


SECTIONS = {"sel": ("model", "train", "augment"), "wsel": ("model", "train", "refine")}


def main(params: dict, task: str) -> None:
    params = validate_params(params, SECTIONS[task], typed=True)
    model, config = ModelChoice.of(params["model"]), params["train"]
    set_seed(config.seed)
    if task == "sel":
        _sel(model, config, params["augment"])
    else:
        _wsel(model, config, params["refine"])


def run(argv: list[str]) -> None:
    """Check the task and the sections it reads, then train."""
    task = task_argument(argv[1] if len(argv) > 1 else "", list(SECTIONS))
    main(load_params(SECTIONS[task], typed=True), task)


if __name__ == "__main__":
    run_stage(lambda: run(sys.argv))
