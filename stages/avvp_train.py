"""avvp_train and avvp_retrain stages: the AVVP model (Step 1) and its retraining with the
slice labels (Step 3 of seed 004): HAN and HAN + LR by default.

``python -m stages.avvp_train han`` (avvp_train) reads ``avvp.model``, ``avvp.train``,
``avvp.refine.{auxiliary,auxiliary_weight,window,stride}``,
``train.{seed,device,precision,deterministic_cpu}`` (as the AVEL training stages),
``data/llp/`` and ``data/avvp_model_code.json``: the weak loss of the task, plus the
auxiliary objective of seed 004 §4.3 when ``avvp.refine.auxiliary``.
``python -m stages.avvp_train han_lr`` (avvp_retrain) reads ``avvp.model``, ``avvp.train``,
the same ``train`` keys and the slice labels of ``data/avvp_refined/labels.npz``, and
retrains the model from scratch with the weak loss plus the refinement loss of eqs 12-13
(:mod:`pipeline.avvp.refine`). The model is ``avvp.model.name`` of the registry, built as
the AVEL stages build theirs (:class:`pipeline.training.choice.ModelChoice`) and trained
by the same loop (:func:`pipeline.avvp.train.fit_avvp`).

Each writes ``data/models/avvp_<task>.pt`` (the epoch with the best validation Type@AV) and
``metrics/avvp/train/<task>.json`` (that epoch, its validation metrics, the per-epoch log).
The per-epoch log goes through dvclive to ``metrics/avvp/train_log/<task>/`` (the shared
:mod:`pipeline.training.live`); an interrupted run resumes from ``.resume/avvp_<task>.pt``
(the shared :mod:`pipeline.training.resume`), removed once the outputs are written.
"""

import sys

import torch

from pipeline.avvp.refine import draw_partners, load_avvp_slice_labels
from pipeline.avvp.train import SELECTION, Refinement, fit_avvp, load_data
from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.device import resolve_device
from pipeline.errors import run_stage
from pipeline.refinement.slices import slice_starts
from pipeline.training.choice import ModelChoice, save_outputs
from pipeline.training.live import epoch_logger
from pipeline.training.loop import set_seed
from pipeline.training.resume import ResumeFile, fingerprint
from stages.common import param, task_argument

TASKS = paths.AVVP_TASKS
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
    settings = {key: param(params, key) for key in PARAMS[task]}
    inputs = [paths.AVVP_DOWNLOAD_METRICS] + ([paths.AVVP_REFINED] if task == "han_lr" else [])
    return ResumeFile(paths.resume_state(f"avvp_{task}"), fingerprint(settings, inputs))


def main(params: dict, task: str) -> None:
    task = task_argument(task, TASKS)
    model = ModelChoice.of(params["avvp"]["model"], "avvp")
    seed = params["train"]["seed"]
    device = resolve_device(params["train"]["device"])
    train = load_data(paths.LLP_STORE, "train").to(device)
    val = load_data(paths.LLP_STORE, "val").to(device)
    set_seed(seed)
    network, kwargs, ignored = model.build(train.dims(), device)
    refinement = _refinement(task, params, train, device)
    resume = _resume_file(task, params)
    live, log = epoch_logger(paths.avvp_train_log(task), ("train_loss", f"val_{SELECTION}", "lr"))
    config = dict(params["avvp"]["train"], seed=seed)
    precision = params["train"]["precision"]
    result = fit_avvp(network, train, val, config, device, refinement, log, resume, precision)
    live.end()
    metrics = {
        "best_epoch": result.best_epoch,
        "val": result.best_val,
        "parameters": sum(p.numel() for p in network.parameters()),
        "history": result.history,
    }
    files = (paths.avvp_checkpoint(task), paths.avvp_train_metrics(task))
    save_outputs(result, model, kwargs, files, metrics, resume, epoch=result.best_epoch)
    print(
        f"avvp {task} ({model.name}): best epoch {result.best_epoch}, val Type@AV "
        f"{result.best_score:.3f}" + (f"; ignored avvp.model keys {ignored}" if ignored else "")
    )


if __name__ == "__main__":
    run_stage(
        lambda: main(load_params(("avvp", "train")), sys.argv[1] if len(sys.argv) > 1 else "")
    )
