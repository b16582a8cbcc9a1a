"""The training loop, with checkpoint choice on val; the losses are in pipeline.objectives.

The checkpoint kept is the epoch with the best segment accuracy on the **validation** split
(ties: the earliest); the test split is never looked at during training (DESIGN.md §6).
"""

import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from pipeline.errors import PipelineError

# One mini-batch's loss: objective(model, batch, epoch, device) (pipeline.objectives).
Objective = Callable[[nn.Module, dict[str, torch.Tensor], int, torch.device], torch.Tensor]

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("constant", "step", "cosine", "cosine_restarts")


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch (DESIGN.md §7)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (seeds third-party code that uses the legacy API)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; ``cpu`` / ``cuda`` / ``cuda:N`` as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PipelineError(f"params.yaml: device '{name}' requested but CUDA is not available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise PipelineError(f"params.yaml: unknown device {name!r} (auto, cpu, cuda)") from None


def quiet() -> bool:
    """Progress bars are off under CI and when stderr is not a terminal."""
    return bool(os.environ.get("CI")) or not sys.stderr.isatty()


def make_optimizer(
    name: str, parameters, lr: float, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """Adam (seed 004 §5.1), AdamW or SGD with momentum 0.9.

    Args:
        name: ``adam``, ``adamw`` or ``sgd``.
        parameters: the model's parameters.
        lr: learning rate.
        weight_decay: L2 penalty (default: 0).
    """
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(parameters, lr=lr, momentum=0.9, weight_decay=weight_decay)


def warm_restart_factor(
    epoch: int, period: int, milestones: list[int], floors: list[float]
) -> float:
    """Learning-rate factor of cosine annealing with warm restarts and falling floors.

    Seed 001 §4: "cosine annealing with warm restarts every 20 epochs, from the base rate
    down to 0.1x until epoch 300, then down to 0.01x until epoch 400". Within each period
    the factor falls from 1 to the floor of the current phase along a half cosine; the floor
    is ``floors[i]`` while ``epoch < milestones[i]`` (the last floor holds afterwards).

    Args:
        epoch: 0-based epoch.
        period: epochs between warm restarts (paper: 20).
        milestones: epochs where each floor ends (paper: ``[300, 400]``).
        floors: factor at the end of each cosine in each phase (paper: ``[0.1, 0.01]``).
    """
    phase = sum(epoch >= m for m in milestones[:-1])
    floor = floors[phase]
    progress = (epoch % period) / period
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    step_size: int,
    gamma: float,
    milestones: list[int] | None = None,
    floors: list[float] | None = None,
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch learning-rate schedule.

    Args:
        name: ``constant``; ``step`` (multiply by ``gamma`` every ``step_size`` epochs);
            ``cosine`` (anneal to 0 over ``epochs``); ``cosine_restarts`` (DPNet's schedule,
            :func:`warm_restart_factor`, restarting every ``step_size`` epochs).
        optimizer: the optimizer.
        epochs: number of epochs.
        step_size: epochs between decays of ``step`` / restarts of ``cosine_restarts``.
        gamma: decay factor of ``step``.
        milestones: phase ends of ``cosine_restarts`` (default: ``None``).
        floors: per-phase floors of ``cosine_restarts`` (default: ``None``).
    """
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "cosine_restarts":
        if not milestones or len(milestones) != len(floors or []):
            raise PipelineError(
                "params.yaml: train.milestones and train.floors must be lists of equal, "
                f"non-zero length for cosine_restarts, found {milestones} and {floors}"
            )
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda e: warm_restart_factor(e, step_size, milestones, floors)
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def forward(
    model: nn.Module, batch: dict[str, torch.Tensor], device: torch.device, **kwargs
) -> torch.Tensor:
    """Raw segment scores ``(B, T, C)`` of a batch (``kwargs`` go to the model)."""
    return model(batch["audio"].to(device), batch["visual"].to(device), **kwargs)


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, device: torch.device, **kwargs) -> np.ndarray:
    """Raw segment scores of every video of ``loader``, in dataset order: ``(n, T, C)``.

    Args:
        model: the model.
        loader: batches in dataset order.
        device: where the model lives.
        **kwargs: passed to the model's forward (e.g. EDRNet's ``output``).
    """
    model.eval()
    chunks = [forward(model, batch, device, **kwargs).float().cpu().numpy() for batch in loader]
    return np.concatenate(chunks)


def segment_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Share of segments whose arg-max class equals the label."""
    return float(np.mean(scores.argmax(axis=-1) == labels))


@dataclass
class TrainResult:
    """Outcome of :func:`fit`: the best state on val and the per-epoch log."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_val_accuracy: float
    history: list[dict[str, float]] = field(default_factory=list)


def _run_epoch(model, loader, optimizer, objective: Objective, epoch: int, device) -> float:
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = objective(model, batch, epoch, device)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()}")
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch["labels"])
        count += len(batch["labels"])
    return total / count


def fit(
    model: nn.Module,
    objective: Objective,
    train_loader: DataLoader,
    val_loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    epochs: int,
    device: torch.device,
    name: str = "train",
) -> TrainResult:
    """Train for ``epochs`` epochs and keep the state with the best val accuracy.

    Args:
        model: a model mapping ``(audio, visual)`` to ``(B, T, C)`` raw scores.
        objective: ``objective(model, batch, epoch, device) -> loss`` of one mini-batch
            (:mod:`pipeline.objectives`).
        train_loader: training batches (shuffled).
        val_loader: validation batches, in dataset order.
        optimizer: the optimizer.
        scheduler: stepped once per epoch.
        epochs: number of epochs.
        device: where the model lives.
        name: what the progress bar shows (default ``"train"``).
    """
    val_labels = val_loader.dataset.labels
    best = TrainResult(best_state={}, best_epoch=0, best_val_accuracy=-1.0)
    start = time.perf_counter()
    for epoch in tqdm(range(1, epochs + 1), desc=name, disable=quiet()):
        lr = optimizer.param_groups[0]["lr"]
        loss = _run_epoch(model, train_loader, optimizer, objective, epoch, device)
        scheduler.step()
        accuracy = segment_accuracy(predict(model, val_loader, device), val_labels)
        seconds = round(time.perf_counter() - start, 1)  # wall time so far (not a metric)
        best.history.append(
            {
                "epoch": epoch,
                "train_loss": loss,
                "val_accuracy": accuracy,
                "lr": lr,
                "seconds": seconds,
            }
        )
        if accuracy > best.best_val_accuracy:
            best.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            best.best_epoch, best.best_val_accuracy = epoch, accuracy
    return best
