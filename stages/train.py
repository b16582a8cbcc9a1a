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

from pipeline import paths
from pipeline.augment.compositions import load_compositions
from pipeline.data import store
from pipeline.data.composed import ComposedDataset, identity_sources
from pipeline.data.dataset import AVEDataset
from pipeline.errors import PipelineError, run_stage
from pipeline.models import MODELS
from pipeline.objectives import Supervised, WithAuxiliary, WithReplicas, weak_loss
from pipeline.params import load_params
from pipeline.refine import slice_starts
from pipeline.runner import model_section, train_and_save, train_section


def _sel(params: dict, name: str, hyper: dict, config: dict) -> None:
    augment = params["augment"]
    pooled = paths.pooled_features(MODELS[name].needs_maps)
    rows = store.split_order(paths.STORE, "train")
    sources, labels = identity_sources(rows), store.segment_labels(paths.STORE)[rows]
    n_smb = 0
    if augment["smb_per_class"] > 0:
        smb = load_compositions(paths.SMB)
        sources, labels = (
            np.concatenate([sources, smb.sources]),
            np.concatenate([labels, smb.labels]),
        )
        n_smb = len(smb.labels)
    train_set = ComposedDataset(paths.STORE, sources, labels, pooled)
    objective = Supervised()
    linked = False
    if augment["replicate"]:
        pool = load_compositions(paths.REPLICAS)
        per_video = len(pool.labels) // len(rows)
        replicas = ComposedDataset(paths.STORE, pool.sources, pool.labels, pooled)
        objective = WithReplicas(replicas, per_video, len(rows), bool(augment["link"]))
        linked = bool(augment["link"]) and MODELS[name].uses_graph
    metrics = {
        "smb_videos": n_smb,
        "replicate": bool(augment["replicate"]),
        "link_applied": linked,
        "link_ignored": bool(augment["replicate"] and augment["link"]) and not linked,
    }
    inputs = (paths.STORE, paths.AUGMENTED)
    train_and_save("sel", name, hyper, config, train_set, objective, metrics, augment, inputs)


def _wsel(params: dict, name: str, hyper: dict, config: dict) -> None:
    refine = params["refine"]
    pooled = paths.pooled_features(MODELS[name].needs_maps)
    with_background = bool(config["background_videos"])
    train_set = AVEDataset(paths.STORE, "train", pooled, background_videos=with_background)
    objective = weak_loss
    if refine["auxiliary"]:
        # partners: the background-only videos, whether or not they are trained on
        partners = AVEDataset(paths.STORE, "train", pooled, background_videos=True)
        n = len(partners) - partners.n_background_videos
        objective = WithAuxiliary(
            partners,
            np.arange(n, len(partners)),
            slice_starts(store.T, refine["window"], refine["stride"]),
            refine["window"],
            config["seed"],
        )
    metrics = {
        "background_videos": train_set.n_background_videos,
        "auxiliary": bool(refine["auxiliary"]),
    }
    inputs = [paths.STORE]
    train_and_save("wsel", name, hyper, config, train_set, objective, metrics, refine, inputs)


SECTIONS = {"sel": ("model", "train", "augment"), "wsel": ("model", "train", "refine")}


def main(params: dict, task: str) -> None:
    name, hyper = model_section(params)
    config = train_section(params)
    (_sel if task == "sel" else _wsel)(params, name, hyper, config)


def _task(argv: list[str]) -> str:
    task = argv[1] if len(argv) > 1 else ""
    if task not in SECTIONS:
        raise PipelineError(f"stage argument: expected one of {list(SECTIONS)}, found {task!r}")
    return task


def run(argv: list[str]) -> None:
    """Check the task and the sections it reads, then train."""
    task = _task(argv)
    main(load_params(SECTIONS[task]), task)


if __name__ == "__main__":
    run_stage(lambda: run(sys.argv))
