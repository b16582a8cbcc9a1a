"""avvp_train and avvp_retrain stages: HAN (Step 1) and HAN + LR (Step 3 of seed 004).

``python -m stages.avvp_train han`` (avvp_train) reads ``avvp.model``, ``avvp.train``,
``avvp.refine.{auxiliary,auxiliary_weight,window,stride}``,
``train.{seed,device,precision,deterministic_cpu}`` (as the AVEL training stages) and
``data/llp/``: HAN's weak loss, plus the auxiliary objective of seed 004 §4.3 when
``avvp.refine.auxiliary``. ``python -m stages.avvp_train han_lr`` (avvp_retrain) reads
``avvp.model``, ``avvp.train``, the same ``train`` keys and the slice labels of
``data/avvp_refined/labels.npz``, and retrains HAN from scratch with the weak loss plus the
refinement loss of eqs 12-13 (:mod:`pipeline.avvp.refine`).

Each writes ``data/models/avvp_<task>.pt`` (the epoch with the best validation Type@AV) and
``metrics/avvp/train/<task>.json`` (that epoch, its validation metrics, the per-epoch log).
The per-epoch log goes through dvclive to ``metrics/avvp/train_log/<task>/`` (the shared
:mod:`pipeline.training.live`); an interrupted run resumes from ``.resume/avvp_<task>.pt``
(the shared :mod:`pipeline.training.resume`), removed once the outputs are written.
"""

import sys

import torch

from pipeline.avvp.han import HAN
from pipeline.avvp.refine import draw_partners, load_avvp_slice_labels
from pipeline.avvp.train import SELECTION, Refinement, fit_han, load_data, save_han
from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.device import resolve_device
from pipeline.errors import PipelineError, run_stage
from pipeline.io import write_json
from pipeline.refinement.slices import slice_starts
from pipeline.training.live import epoch_logger
from pipeline.training.resume import ResumeFile, fingerprint

TASKS = ("han", "han_lr")
SHARED = (
    "avvp.model",
    "avvp.train",
    "train.seed",
    "train.device",
    "train.precision",
    "train.deterministic_cpu",
)
PARAMS = {  # what dvc.yaml declares for avvp_train (han) and avvp_retrain (han_lr)
    "han": (
        *SHARED,
        *(f"avvp.refine.{k}" for k in ("auxiliary", "auxiliary_weight", "window", "stride")),
    ),
    "han_lr": SHARED,
}


def _refinement(task: str, params: dict, train_data, device: torch.device) -> Refinement | None:
    config = params["avvp"]["refine"]
    if task == "han_lr":
        saved = load_avvp_slice_labels(paths.AVVP_REFINED, train_data.names)
        labels = torch.as_tensor(saved.labels, device=device)
        return Refinement(saved.starts.tolist(), saved.window, slice_labels=labels)
    if not config["auxiliary"]:
        return None
    starts = slice_starts(10, config["window"], config["stride"])
    partners = draw_partners(train_data.weak.numpy(), params["train"]["seed"])
    return Refinement(
        starts,
        config["window"],
        partners=torch.as_tensor(partners, device=device),
        auxiliary_weight=config["auxiliary_weight"],
    )


def _resume_file(task: str, params: dict) -> ResumeFile:
    """``.resume/avvp_<task>.pt``, valid for the params the stage reads (:data:`PARAMS`) and
    its inputs: the store's manifest of sha256s (not the store's gigabytes) and, for
    ``han_lr``, the slice labels."""
    settings = {key: _value(params, key) for key in PARAMS[task]}
    inputs = [paths.AVVP_DOWNLOAD_METRICS] + ([paths.AVVP_REFINED] if task == "han_lr" else [])
    return ResumeFile(paths.resume_state(f"avvp_{task}"), fingerprint(settings, inputs))


def _value(params: dict, key: str):
    for part in key.split("."):
        params = params[part]
    return params


def main(params: dict, task: str) -> None:
    if task not in TASKS:
        raise PipelineError(
            f"usage: python -m stages.avvp_train {{{','.join(TASKS)}}}, got {task!r}"
        )
    device = resolve_device(params["train"]["device"])
    train = load_data(paths.LLP_STORE, "train").to(device)
    val = load_data(paths.LLP_STORE, "val").to(device)
    config = dict(params["avvp"]["train"], seed=params["train"]["seed"])
    kwargs = {**train.dims(), **params["avvp"]["model"]}
    torch.manual_seed(config["seed"])
    model = HAN(**kwargs).to(device)
    refinement = _refinement(task, params, train, device)
    resume = _resume_file(task, params)
    live, log = epoch_logger(paths.avvp_train_log(task), ("train_loss", f"val_{SELECTION}", "lr"))
    precision = params["train"]["precision"]
    result = fit_han(model, train, val, config, device, refinement, log, resume, precision)
    live.end()
    save_han(paths.avvp_checkpoint(task), result.best_state, kwargs, epoch=result.best_epoch)
    write_json(
        paths.avvp_train_metrics(task),
        {
            "best_epoch": result.best_epoch,
            "val": result.best_val,
            "parameters": sum(p.numel() for p in model.parameters()),
            "history": result.history,
        },
    )
    resume.remove()
    print(
        f"avvp {task}: best epoch {result.best_epoch}, "
        f"val Type@AV {result.best_val['type_segment']:.3f}"
    )


if __name__ == "__main__":
    run_stage(
        lambda: main(load_params(("avvp", "train")), sys.argv[1] if len(sys.argv) > 1 else "")
    )
