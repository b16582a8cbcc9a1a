"""train stage: fit ``model.name`` on SEL or WSEL and keep the best checkpoint on val.

Reads ``params.yaml`` sections ``model`` and ``train`` and ``data/ave/``; writes
``data/models/<task>.pt``, ``metrics/train/<task>.json`` and the per-epoch log
``metrics/train_log/<task>.csv``. Usage: ``python -m stages.train sel|wsel``.
"""

import csv
import sys

from pipeline import paths
from pipeline.checkpoint import save_checkpoint
from pipeline.data.dataset import AVEDataset, make_loader
from pipeline.errors import run_stage
from pipeline.io import atomic_path, write_json
from pipeline.models import MODELS, all_hyperparameters, build_model, model_arguments
from pipeline.params import choice, load_params, section
from pipeline.train import (
    OPTIMIZERS,
    SCHEDULERS,
    fit,
    make_optimizer,
    make_scheduler,
    resolve_device,
    set_seed,
)

TRAIN_KEYS = [
    "seed",
    "device",
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "weight_decay",
    "scheduler",
    "step_size",
    "gamma",
    "milestones",
    "floors",
    "background_videos",
]


def _model_section(params: dict) -> tuple[str, dict]:
    hyper = dict(section(params, "model", ["name"], optional=all_hyperparameters()))
    name = choice(hyper.pop("name"), "model.name", MODELS)
    return name, hyper


def _data_dimensions(dataset: AVEDataset) -> dict[str, int]:
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


def main(params: dict, task: str) -> None:
    choice(task, "the stage argument (task)", paths.TASKS)
    name, hyper = _model_section(params)
    config = section(params, "train", TRAIN_KEYS)
    choice(config["optimizer"], "train.optimizer", OPTIMIZERS)
    choice(config["scheduler"], "train.scheduler", SCHEDULERS)
    set_seed(config["seed"])
    device = resolve_device(config["device"])
    pooled = not MODELS[name].needs_maps
    with_background = task == "wsel" and bool(config["background_videos"])
    train_set = AVEDataset(paths.STORE, "train", pooled, background_videos=with_background)
    val_set = AVEDataset(paths.STORE, "val", pooled)
    kwargs, ignored = model_arguments(name, hyper, _data_dimensions(train_set))
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
        task,
        make_loader(train_set, config["batch_size"], shuffle=True, seed=config["seed"]),
        make_loader(val_set, config["batch_size"]),
        optimizer,
        scheduler,
        config["epochs"],
        device,
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
    write_json(
        paths.TRAIN_METRICS / f"{task}.json",
        {
            "model": name,
            "ignored_model_keys": ", ".join(ignored),
            "best_epoch": result.best_epoch,
            "best_val_accuracy": result.best_val_accuracy,
            "final_train_loss": result.history[-1]["train_loss"],
            "train_videos": len(train_set),
            "background_videos": train_set.n_background_videos,
            "parameters": sum(p.numel() for p in model.parameters()),
        },
    )
    print(f"{task}: best val accuracy {result.best_val_accuracy:.3f} at epoch {result.best_epoch}")


if __name__ == "__main__":
    run_stage(lambda: main(load_params(), sys.argv[1] if len(sys.argv) > 1 else ""))
