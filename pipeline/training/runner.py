"""What every training stage does around its objective: build, fit, save, log.

``train@sel``, ``train@wsel`` and ``retrain@wsel`` differ only in their training set and
objective (:mod:`pipeline.training.objectives`); :func:`train_and_save` does the rest the same way
for all three: the model chosen by the checked ``model`` section (:class:`ModelChoice`,
its class resolved once), the optimizer and schedule from the checked ``train`` section
(a :class:`pipeline.config.schema.Train`, read by attribute), the best checkpoint on val, the
per-epoch log (dvclive) and the metrics, the data placed on the device, and the resume
state of an interrupted run.

The AVVP training stages (``avvp_train``, ``avvp_retrain``) share with them the model
choice and building and the outputs (:mod:`pipeline.training.choice`), the loop
(:func:`pipeline.training.loop.fit`) and the log (:mod:`pipeline.training.live`).
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline import hooks
from pipeline.config import paths
from pipeline.config.schema import Train
from pipeline.cpu import machine
from pipeline.data.dataset import AVEDataset, make_loader
from pipeline.device import resolve_device
from pipeline.models import Model
from pipeline.training.choice import ModelChoice, save_outputs
from pipeline.training.live import epoch_logger
from pipeline.training.loop import (
    Objective,
    Trainer,
    fit,
    loader_options,
    make_optimizer,
    make_scheduler,
    place,
)
from pipeline.training.resume import ResumeFile, fingerprint


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


def train_and_save(
    task: str,
    model: ModelChoice,
    config: Train,
    train_set,
    objective: Objective,
    metrics: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    inputs: Sequence[Path] = (),
) -> Model:
    """Fit ``model`` and write ``data/models/<task>.pt``, its log and its metrics.

    The per-epoch log goes through dvclive to ``metrics/train_log/<task>/``
    (``metrics.json``, the latest epoch, which ``dvc exp show`` lists while the stage runs,
    and ``plots/metrics/*.tsv``, the curves of ``dvc plots``). The training state after
    every epoch goes to ``.resume/<task>.pt`` (:mod:`pipeline.training.resume`) and is removed once
    the outputs are written; a rerun with the same params and inputs resumes from it.

    Args:
        task: the output name (``sel``, ``wsel`` or ``wsel_refined``).
        model: the chosen model (:meth:`ModelChoice.of`).
        config: the checked ``train`` section.
        train_set: the training dataset (items as in :class:`AVEDataset`).
        objective: the loss of a mini-batch (:mod:`pipeline.training.objectives`).
        metrics: extra entries of ``metrics/train/<task>.json`` (default: none).
        settings: the other params the stage reads, which a resume state must match
            (default: none).
        inputs: the data files or directories the stage reads, which a resume state must
            match (default: none).

    Returns:
        The trained model (last epoch; the checkpoint holds the best on val).
    """
    device = resolve_device(config.device)
    val_set = AVEDataset(paths.STORE, "val", model.pooled)
    network, kwargs, ignored = model.build(data_dimensions(train_set), device)
    optimizer = make_optimizer(config, network.parameters())
    scheduler = make_scheduler(config, optimizer)
    resident = not model.cls.needs_maps and place([train_set, val_set, objective], device)
    options = loader_options(device, resident, config.workers)
    trainer = Trainer(
        network, objective, optimizer, scheduler, device, config.precision, config.compile
    )
    identity = {
        "task": task,
        "model": model.name,
        "hyper": model.hyperparameters,
        "train": config.model_dump(exclude_unset=True),
        **(settings or {}),
    }
    resume = ResumeFile(paths.resume_state(task), fingerprint(identity, inputs))
    live, log = epoch_logger(paths.TRAIN_LOGS / task, ("train_loss", "val_accuracy", "lr"))
    result = fit(
        trainer,
        hooks.current().training_loader(
            make_loader(train_set, config.batch_size, shuffle=True, seed=config.seed, **options)
        ),
        make_loader(val_set, config.batch_size, **options),
        config.epochs,
        name=f"train {task}",
        resume=resume,
        on_epoch=log,
        resume_every=config.resume_every,
    )
    live.end()
    summary = {
        "model": model.name,
        "ignored_model_keys": ", ".join(ignored),
        "best_epoch": result.best_epoch,
        "best_val_accuracy": result.best_val_accuracy,
        "final_train_loss": result.history[-1]["train_loss"],
        "train_videos": len(train_set),
        "parameters": sum(p.numel() for p in network.parameters()),
    }
    save_outputs(
        result,
        model,
        kwargs,
        (paths.checkpoint(task), paths.TRAIN_METRICS / f"{task}.json"),
        {**summary, **machine(), **(metrics or {})},
        resume,
        task=task,
        epoch=result.best_epoch,
        val_accuracy=result.best_val_accuracy,
    )
    print(f"{task}: best val accuracy {result.best_val_accuracy:.3f} at epoch {result.best_epoch}")
    return network
