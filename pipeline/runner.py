"""What every training stage does around its objective: build, fit, save, log.

``train@sel``, ``train@wsel`` and ``retrain@wsel`` differ only in their training set and
objective (:mod:`pipeline.objectives`); :func:`train_and_save` does the rest the same way
for all three: the model from the flat ``model`` section, the optimizer and schedule from
the ``train`` section, the best checkpoint on val, the per-epoch log and the metrics.
"""

import csv
from typing import Any

from torch import nn

from pipeline import paths
from pipeline.checkpoint import save_checkpoint
from pipeline.data.dataset import AVEDataset, make_loader
from pipeline.io import atomic_path, write_json
from pipeline.models import MODELS, all_hyperparameters, build_model, model_arguments
from pipeline.params import TRAIN_KEYS, choice, section
from pipeline.train import (
    OPTIMIZERS,
    SCHEDULERS,
    Objective,
    fit,
    make_optimizer,
    make_scheduler,
    resolve_device,
    set_seed,
)


def model_section(params: dict) -> tuple[str, dict]:
    """``(name, hyperparameters)`` of the ``model`` section, the name checked."""
    hyper = dict(section(params, "model", ["name"], optional=all_hyperparameters()))
    name = choice(hyper.pop("name"), "model.name", MODELS)
    return name, hyper


def train_section(params: dict) -> dict:
    """The ``train`` section with its choices checked; seeds everything (DESIGN.md §7)."""
    config = section(params, "train", TRAIN_KEYS)
    choice(config["optimizer"], "train.optimizer", OPTIMIZERS)
    choice(config["scheduler"], "train.scheduler", SCHEDULERS)
    set_seed(config["seed"])
    return config


def data_dimensions(dataset) -> dict[str, int]:
    """The data-derived constructor arguments (audio and visual sizes, map regions)."""
    item = dataset[0]
    visual = item["visual"]  # (T, H, W, C) or (T, C)
    regions = visual.shape[1] * visual.shape[2] if visual.dim() == 4 else 1
    return {
        "audio_dim": item["audio"].shape[-1],
        "visual_dim": visual.shape[-1],
        "n_regions": regions,
    }


def _write_log(history: list[dict], task: str) -> None:
    with atomic_path(paths.TRAIN_LOGS / f"{task}.csv") as tmp, open(tmp, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def train_and_save(
    task: str,
    name: str,
    hyper: dict,
    config: dict,
    train_set,
    objective: Objective,
    metrics: dict[str, Any] | None = None,
) -> nn.Module:
    """Fit model ``name`` and write ``data/models/<task>.pt``, its log and its metrics.

    Args:
        task: the output name (``sel``, ``wsel`` or ``wsel_refined``).
        name: registry name of the model.
        hyper: the ``model`` section without ``name``.
        config: the checked ``train`` section (:func:`train_section`).
        train_set: the training dataset (items as in :class:`AVEDataset`).
        objective: the loss of a mini-batch (:mod:`pipeline.objectives`).
        metrics: extra entries of ``metrics/train/<task>.json`` (default: none).

    Returns:
        The trained model (last epoch; the checkpoint holds the best on val).
    """
    device = resolve_device(config["device"])
    val_set = AVEDataset(paths.STORE, "val", pooled=not MODELS[name].needs_maps)
    kwargs, ignored = model_arguments(name, hyper, data_dimensions(train_set))
    model = build_model(name, **kwargs).to(device)
    optimizer = make_optimizer(
        config["optimizer"], model.parameters(), config["lr"], config["weight_decay"]
    )
    scheduler = make_scheduler(
        config["scheduler"],
        optimizer,
        config["epochs"],
        config["step_size"],
        config["gamma"],
        config["milestones"],
        config["floors"],
    )
    result = fit(
        model,
        objective,
        make_loader(train_set, config["batch_size"], shuffle=True, seed=config["seed"]),
        make_loader(val_set, config["batch_size"]),
        optimizer,
        scheduler,
        config["epochs"],
        device,
        name=f"train {task}",
    )
    save_checkpoint(
        paths.checkpoint(task),
        result.best_state,
        name,
        kwargs,
        task=task,
        epoch=result.best_epoch,
        val_accuracy=result.best_val_accuracy,
    )
    _write_log(result.history, task)
    summary = {
        "model": name,
        "ignored_model_keys": ", ".join(ignored),
        "best_epoch": result.best_epoch,
        "best_val_accuracy": result.best_val_accuracy,
        "final_train_loss": result.history[-1]["train_loss"],
        "train_videos": len(train_set),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    write_json(paths.TRAIN_METRICS / f"{task}.json", {**summary, **(metrics or {})})
    print(f"{task}: best val accuracy {result.best_val_accuracy:.3f} at epoch {result.best_epoch}")
    return model
