"""The training loop of both tasks, with checkpoint choice on val; AVEL's losses are in
pipeline.training.objectives.

One loop (:func:`fit`) trains every model, AVEL's and AVVP's; a task gives its batches,
its objective (one mini-batch's loss) and its :class:`Validation` (the metric of the
checkpoint choice and which epoch a tie keeps). The checkpoint kept is the epoch with the
best validation score: AVEL's segment accuracy (ties: the earliest), AVVP's segment-level
Type@AV (ties: the later, as Tian et al.'s code; :mod:`pipeline.avvp.train`). The test
split is never looked at during training (docs/design.md §6).

What makes a GPU run fast (docs/design.md §7) is here too, and tested on the CPU: mixed precision
(:func:`autocast`, with a gradient scaler for ``fp16``), used alike by training, validation,
evaluation and refinement (:func:`predict`); in-memory data placed on the device once
(:func:`place`); non-blocking copies of pinned batches (:func:`forward`); an optional
:func:`torch.compile`; and resuming after an interruption (:mod:`pipeline.training.resume`).
"""

import functools
import math
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from pipeline import hooks
from pipeline.config.schema import Train
from pipeline.training.precision import autocast, make_scaler
from pipeline.training.resume import ResumeFile, rng_state, set_rng_state

# One mini-batch's loss: objective(model, batch, epoch, device) (pipeline.training.objectives).
Objective = Callable[[nn.Module, dict[str, torch.Tensor], int, torch.device], torch.Tensor]


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch (docs/design.md §7)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (seeds third-party code that uses the legacy API)
    torch.manual_seed(seed)


def quiet() -> bool:
    """Progress bars are off under CI and when stderr is not a terminal."""
    return bool(os.environ.get("CI")) or not sys.stderr.isatty()


def make_optimizer(config: Train, parameters) -> torch.optim.Optimizer:
    """``train.optimizer``: Adam (seed 004 §5.1), AdamW or SGD with momentum 0.9.

    Args:
        config: the checked ``train`` section (``optimizer``, ``lr``, ``weight_decay``).
        parameters: the model's parameters.
    """
    options = {"lr": config.lr, "weight_decay": config.weight_decay}
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, **options)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, **options)
    return torch.optim.SGD(parameters, momentum=0.9, **options)


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
    config: Train, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler:
    """``train.scheduler``: the per-epoch learning-rate schedule.

    ``constant``; ``step`` (multiply by ``gamma`` every ``step_size`` epochs); ``multistep``
    (multiply by ``gamma`` at each epoch of ``milestones``, which the schema requires: PSP's
    and CMRAN's official schedules); ``cosine`` (anneal to 0 over ``epochs``);
    ``cosine_restarts`` (DPNet's schedule, :func:`warm_restart_factor`, restarting every
    ``step_size`` epochs, with the ``milestones`` and ``floors`` whose agreement the schema
    checks).

    Args:
        config: the checked ``train`` section.
        optimizer: the optimizer.
    """
    if config.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=config.step_size, gamma=config.gamma
        )
    if config.scheduler == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(
            optimizer, config.milestones, gamma=config.gamma
        )
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.scheduler == "cosine_restarts":
        period, milestones, floors = config.step_size, config.milestones, config.floors
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda e: warm_restart_factor(e, period, milestones, floors)
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


RESIDENT_SHARE = 0.25  # in-memory data goes to a GPU when under this share of its free memory


def place(items: list, device: torch.device) -> bool:
    """Move the in-memory data of ``items`` to ``device`` once, when it fits.

    Each item has ``nbytes`` and ``to(device)`` (the pooled datasets and the objectives
    that hold datasets or label tables). On the CPU everything is already in memory. On a
    GPU the data moves when it takes under :data:`RESIDENT_SHARE` of the free memory, so
    that batches are gathered on the device with no host-to-device copy of features.

    Args:
        items: datasets and objectives (those without ``to`` are skipped).
        device: the training device.

    Returns:
        Whether the data now lives on ``device``.
    """
    items = [item for item in items if hasattr(item, "to")]
    if device.type == "cuda":
        need = sum(item.nbytes for item in items)
        free, _ = torch.cuda.mem_get_info(device)
        if need > RESIDENT_SHARE * free:
            print(f"data of {need / 2**20:.0f} MiB stays in host memory ({free / 2**20:.0f} free)")
            return False
    for item in items:
        item.to(device)
    return True


def loader_options(device: torch.device, resident: bool, workers: int = 0) -> dict[str, Any]:
    """:func:`~pipeline.data.dataset.make_loader` options for data on ``device`` or not.

    Data resident on the device (:func:`place`) is gathered in this process. Data read
    from file (maps) is read by ``workers`` processes ahead of the model, and on a GPU
    into pinned memory, which :func:`forward` copies to the device without blocking.

    Args:
        device: the training device.
        resident: whether the data lives on ``device``.
        workers: reading processes for data read from file (``train.workers``, default 0).
    """
    if resident:
        return {}
    return {"workers": workers, "pin_memory": device.type == "cuda"}


def forward(
    model: nn.Module, batch: dict[str, torch.Tensor], device: torch.device, **kwargs
) -> torch.Tensor:
    """Raw segment scores ``(B, T, C)`` of a batch (``kwargs`` go to the model)."""
    audio = batch["audio"].to(device, non_blocking=True)  # (B, T, A)
    visual = batch["visual"].to(device, non_blocking=True)  # (B, T, ...)
    return model(audio, visual, **kwargs)


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    precision: str = "fp32",
    **kwargs,
) -> np.ndarray:
    """Raw segment scores of every video of ``loader``, in dataset order: ``(n, T, C)``.

    Args:
        model: the model.
        loader: batches in dataset order.
        device: where the model lives.
        precision: ``fp32``, ``bf16`` or ``fp16`` (:func:`autocast`; default ``fp32``).
        **kwargs: passed to the model's forward (e.g. EDRNet's ``output``).
    """
    model.eval()

    def run(batches) -> np.ndarray:
        chunks = []
        for batch in batches:
            with autocast(device, precision):
                chunks.append(forward(model, batch, device, **kwargs).float())  # (B, T, C)
        return torch.cat(chunks).cpu().numpy()  # one copy back, one synchronisation

    return hooks.current().forward_pass(run, loader)


def segment_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Share of segments whose arg-max class equals the label."""
    return float(np.mean(scores.argmax(axis=-1) == labels))


STATE_FORMAT = 2
"""The layout of :func:`fit`'s resume states (2: both tasks' loop, :class:`TrainResult` with
``best_score`` and ``best_val``); a state of another layout is not resumed."""


@dataclass
class Validation:
    """How a task scores the model on the validation split, for the checkpoint choice.

    Args:
        metric: the name of the score that chooses (the per-epoch row's ``val_<metric>``).
        score: ``score(model) -> metrics``: every validation metric of the model, with
            ``metric`` among them.
        later_on_tie: on an equal score, keep the later epoch (default ``False``: the
            earlier).
    """

    metric: str
    score: Callable[[nn.Module], dict[str, float]]
    later_on_tie: bool = False

    def better(self, score: float, best: float) -> bool:
        """Whether an epoch scoring ``score`` replaces the best so far, ``best``."""
        return score >= best if self.later_on_tie else score > best


def accuracy_on(loader: DataLoader, device: torch.device, precision: str = "fp32") -> Validation:
    """AVEL's validation: the segment accuracy of the model on ``loader`` (:func:`predict`).

    Args:
        loader: validation batches in dataset order; its dataset has ``labels``.
        device: where the model lives.
        precision: the autocast of the forward passes (default ``fp32``).
    """
    labels = loader.dataset.labels

    def score(model: nn.Module) -> dict[str, float]:
        return {"accuracy": segment_accuracy(predict(model, loader, device, precision), labels)}

    return Validation("accuracy", score)


@dataclass
class TrainResult:
    """Outcome of :func:`fit`: the best state on val, its epoch, its validation metrics and
    score (the chosen metric), and the per-epoch log."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_score: float
    best_val: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def best_val_accuracy(self) -> float:
        """:attr:`best_score` under AVEL's validation (:func:`accuracy_on`)."""
        return self.best_score


@dataclass
class Trainer:
    """What one training step needs besides the data.

    Args:
        model: the model (its ``state_dict`` is what is saved).
        objective: ``objective(model, batch, epoch, device) -> loss``
        (:mod:`pipeline.training.objectives`).
        optimizer: the optimizer.
        scheduler: stepped once per epoch.
        device: where the model lives.
        precision: ``fp32``, ``bf16`` or ``fp16`` (:func:`autocast`, default ``fp32``).
        compile: run the model through :func:`torch.compile` (default ``False``).
    """

    model: nn.Module
    objective: Objective
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    device: torch.device
    precision: str = "fp32"
    compile: bool = False
    scaler: torch.amp.GradScaler = field(init=False)
    runner: nn.Module = field(init=False)

    def __post_init__(self) -> None:
        self.scaler = make_scaler(self.device, self.precision)
        self.runner = torch.compile(self.model) if self.compile else self.model

    def run_epoch(self, loader: DataLoader, epoch: int) -> float:
        """One epoch of training steps; the mean loss per video."""
        self.runner.train()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        count = 0
        for batch in loader:
            self.optimizer.zero_grad(set_to_none=True)
            with autocast(self.device, self.precision):
                loss = self.objective(self.runner, batch, epoch, self.device)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += loss.detach().double() * len(batch["labels"])  # videos in the batch
            count += len(batch["labels"])
        mean = total.item() / count  # one synchronisation per epoch
        if not math.isfinite(mean):
            raise FloatingPointError(f"training loss became {mean} in epoch {epoch}")
        return mean

    def state(self, loader: DataLoader) -> dict[str, Any]:
        """Everything a resumed run needs to continue bit-identically
        (:mod:`pipeline.training.resume`)."""
        generator = getattr(loader, "generator", None)
        objective_state = getattr(self.objective, "state_dict", None)
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "loader": None if generator is None else generator.get_state(),
            "objective": None if objective_state is None else objective_state(),
        }

    def restore(self, state: dict[str, Any], loader: DataLoader) -> None:
        """Load a state of :meth:`state`."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        if state["loader"] is not None:
            loader.generator.set_state(state["loader"])
        if state["objective"] is not None:
            self.objective.load_state_dict(state["objective"])


def fit(
    trainer: Trainer,
    train_loader: DataLoader,
    validation: DataLoader | Validation,
    epochs: int,
    name: str = "train",
    resume: ResumeFile | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    resume_every: int = 1,
) -> TrainResult:
    """Train for ``epochs`` epochs and keep the state with the best validation score.

    After each epoch the row ``{epoch, train_loss, val_<metric>, lr}`` goes to
    ``on_epoch``, and after every ``resume_every``-th epoch the whole state to ``resume``.
    A run that finds a state of its own in ``resume`` continues after that epoch,
    replaying the rows logged so far through ``on_epoch``.

    Args:
        trainer: model, objective, optimizer, schedule, device and precision.
        train_loader: training batches (shuffled; dicts with the batch's ``labels``, and a
            ``generator`` attribute when the shuffle is to resume).
        validation: the checkpoint choice (:class:`Validation`), or AVEL's validation
            batches in dataset order (:func:`accuracy_on` them).
        epochs: number of epochs.
        name: what the progress bar shows (default ``"train"``).
        resume: where the per-epoch state lives (default ``None``: not saved).
        on_epoch: called with each epoch's row (default ``None``).
        resume_every: epochs between resume states (``train.resume_every``, default 1:
            every epoch; the state of a large model is written whole each time).
    """
    if not isinstance(validation, Validation):
        validation = accuracy_on(validation, trainer.device, trainer.precision)
    best = TrainResult(best_state={}, best_epoch=0, best_score=-1.0)
    log = on_epoch or (lambda row: None)
    saved = resume.load() if resume is not None else None
    if saved is not None and saved.get("format") != STATE_FORMAT:
        print(f"{resume.path}: resume state of an earlier layout ignored; starting at epoch 1")
        saved = None
    if saved is not None:
        trainer.restore(saved, train_loader)
        best = TrainResult(**saved["best"])
        for row in best.history:
            log(row)
    first = len(best.history) + 1
    for epoch in tqdm(range(first, epochs + 1), desc=name, disable=quiet(), initial=first - 1):
        lr = trainer.optimizer.param_groups[0]["lr"]
        run = functools.partial(trainer.run_epoch, train_loader, epoch)
        loss = hooks.current().epoch(run, train_loader)
        trainer.scheduler.step()
        metrics = validation.score(trainer.runner)
        score = metrics[validation.metric]
        row = {"epoch": epoch, "train_loss": loss, f"val_{validation.metric}": score, "lr": lr}
        best.history.append(row)
        if validation.better(score, best.best_score):
            state = trainer.model.state_dict()
            best.best_state = {k: v.detach().cpu().clone() for k, v in state.items()}
            best.best_epoch, best.best_score, best.best_val = epoch, score, metrics
        log(row)
        if resume is not None and epoch % resume_every == 0:
            state = {"epoch": epoch, "best": vars(best), **trainer.state(train_loader)}
            resume.save({**state, "format": STATE_FORMAT})
    return best
