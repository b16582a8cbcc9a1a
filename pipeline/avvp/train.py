"""Training, prediction and evaluation of HAN on an LLP store (the AVVP task).

The loop follows Tian et al.'s: Adam, a step schedule, HAN's guided weak loss with label
smoothing (:func:`pipeline.avvp.han.han_loss`), and the checkpoint of the epoch with the
best segment-level Type@AV on the **validation** split (their model choice, the later
epoch on a tie); the test split is never looked at during training. Seed 004's
refinement loss and auxiliary objective are added by passing slice labels or partners
(:mod:`pipeline.avvp.refine`).

The frames of a segment are averaged when the data is loaded: HAN projects them linearly
before averaging, so this is the same model on 8 times less memory (the release's train
split then takes 0.9 GB instead of 6.6 GB).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.avvp import store as llp
from pipeline.avvp.han import HAN, han_loss, mmil_pool
from pipeline.avvp.metrics import avvp_metrics, binarize
from pipeline.avvp.refine import STREAMS, auxiliary_loss, refinement_loss
from pipeline.errors import PipelineError
from pipeline.io import atomic_path
from pipeline.training.loop import make_optimizer, make_scheduler, set_seed
from pipeline.training.precision import autocast, make_scaler
from pipeline.training.resume import ResumeFile, rng_state, set_rng_state

SELECTION = "type_segment"  # the validation metric of the checkpoint choice
_KINDS = {"audio": "vggish", "frames": "res152", "snippets": "r2plus1d_18"}


@dataclass
class AVVPData:
    """One split in memory.

    Args:
        names: each video's ``filename``.
        streams: ``audio`` ``(n, T, A)``, ``frames`` ``(n, T, F)`` (averaged per segment),
            ``snippets`` ``(n, T, S)``, float32.
        weak: ``(n, C)`` weak labels.
        dense: ``(n, 2, C, T)`` audio and visual events (val and test), or :obj:`None`.
    """

    names: list[str]
    streams: dict[str, torch.Tensor]
    weak: torch.Tensor
    dense: np.ndarray | None

    def to(self, device: torch.device) -> "AVVPData":
        streams = {k: v.to(device) for k, v in self.streams.items()}
        return AVVPData(self.names, streams, self.weak.to(device), self.dense)

    def dims(self) -> dict[str, int]:
        """The data-derived constructor arguments of HAN."""
        return {
            "audio_dim": self.streams["audio"].shape[-1],
            "frame_dim": self.streams["frames"].shape[-1],
            "snippet_dim": self.streams["snippets"].shape[-1],
            "n_classes": self.weak.shape[-1],
        }


def load_data(store: str | Path, split: str, chunk: int = 256) -> AVVPData:
    """Read ``split`` of a validated store into memory, ``chunk`` videos at a time."""
    part = llp.load_split(store, split)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in STREAMS}
    for start in range(0, len(part.names), chunk):
        features = part.features(range(start, min(start + chunk, len(part.names))))
        for name, kind in _KINDS.items():
            array = features[kind]  # (b, rows, D)
            if name == "frames":
                b, rows, D = array.shape
                array = array.reshape(b, llp.T, rows // llp.T, D).mean(axis=2)
            parts[name].append(array)
    streams = {name: torch.from_numpy(np.concatenate(parts[name])) for name in STREAMS}
    return AVVPData(part.names, streams, torch.from_numpy(part.weak), part.dense)


@torch.no_grad()
def predict_han(
    model: nn.Module, data: AVVPData, batch_size: int = 128, precision: str = "fp32"
) -> tuple[np.ndarray, np.ndarray]:
    """Segment probabilities ``(n, T, 2, C)`` and video probabilities ``(n, C)``.

    Args:
        model: the model.
        data: a split.
        batch_size: videos per forward pass. (default: 128)
        precision: ``fp32``, ``bf16`` or ``fp16``, the shared
            :func:`pipeline.training.precision.autocast`. (default: ``fp32``)
    """
    model.eval()
    device = data.weak.device
    frames, videos = [], []
    for start in range(0, len(data.names), batch_size):
        batch = {k: v[start : start + batch_size] for k, v in data.streams.items()}
        with autocast(device, precision):
            out = model(batch["audio"], batch["frames"], batch["snippets"])
            video = mmil_pool(out).video
        frames.append(out.probs.float().cpu())
        videos.append(video.float().cpu())
    return torch.cat(frames).numpy(), torch.cat(videos).numpy()


def evaluate_han(
    model: nn.Module, data: AVVPData, batch_size: int = 128, precision: str = "fp32"
) -> dict[str, float]:
    """Every AVVP metric of ``model`` on a split with dense labels (:func:`predict_han`)."""
    frame_probs, video_probs = predict_han(model, data, batch_size, precision)
    return avvp_metrics(binarize(frame_probs, video_probs), data.dense)


@dataclass
class Refinement:
    """What Step 3 (slice labels) or Step 1's auxiliary objective add to the weak loss.

    Args:
        starts: window starts; window: ``N``.
        slice_labels: ``(n_train, T1, 2, C)`` labels of eqs 12-13, or :obj:`None`.
        partners: ``(n_train,)`` second videos of the auxiliary objective, or :obj:`None`.
        auxiliary_weight: weight of :math:`\\mathcal{L}_A`. (default: 1.0)
    """

    starts: list[int]
    window: int
    slice_labels: torch.Tensor | None = None
    partners: torch.Tensor | None = None
    auxiliary_weight: float = 1.0


@dataclass
class FitResult:
    """The best state on val, its epoch and metrics, and the per-epoch log."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_val: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)


def _loss(
    model: nn.Module,
    train: AVVPData,
    index: torch.Tensor,
    config: dict[str, Any],
    refinement: Refinement | None,
) -> torch.Tensor:
    batch = {k: v[index] for k, v in train.streams.items()}
    labels = train.weak[index]
    smoothing = (config["audio_smoothing"], config["visual_smoothing"])
    output = model(batch["audio"], batch["frames"], batch["snippets"])
    loss = han_loss(mmil_pool(output), labels, *smoothing)
    if refinement is None:
        return loss
    if refinement.slice_labels is not None:
        slices = refinement.slice_labels[index]
        loss = loss + refinement_loss(output, slices, refinement.starts, refinement.window)
    if refinement.partners is not None:
        other = refinement.partners[index]
        second = {k: v[other] for k, v in train.streams.items()}
        union = torch.maximum(labels, train.weak[other])
        aux = auxiliary_loss(
            model, batch, second, union, refinement.starts, refinement.window, *smoothing
        )
        loss = loss + refinement.auxiliary_weight * aux
    return loss


def _training_state(
    model: nn.Module, optimizer, scheduler, scaler, generator: torch.Generator
) -> dict[str, Any]:
    """Everything a resumed run needs to continue bit-identically (as
    :meth:`pipeline.training.loop.Trainer.state`)."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": rng_state(),
        "shuffle": generator.get_state(),
    }


def _restore(
    saved: dict[str, Any], model: nn.Module, optimizer, scheduler, scaler, generator
) -> None:
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    scaler.load_state_dict(saved["scaler"])
    set_rng_state(saved["rng"])
    generator.set_state(saved["shuffle"])


def fit_han(
    model: nn.Module,
    train: AVVPData,
    val: AVVPData,
    config: dict[str, Any],
    device: torch.device,
    refinement: Refinement | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    resume: ResumeFile | None = None,
    precision: str = "fp32",
) -> FitResult:
    """Train ``model`` and keep the state with the best validation Type@AV (segment level).

    On equal validation scores the later epoch is kept, as in Tian et al.'s official code
    (``if F >= best_F``, ``main_avvp.py``); tests/avvp/test_train.py checks it. After each
    epoch the whole training state goes to ``resume`` (the shared
    :class:`pipeline.training.resume.ResumeFile`); a run that finds a state of its own there
    continues after that epoch, replaying the logged rows through ``on_epoch``, and ends
    as an uninterrupted run would (tests/avvp/test_train.py).

    Args:
        model: HAN, on ``device``.
        train: the training split, on ``device``.
        val: the validation split, on ``device``, with dense labels.
        config: ``seed``, ``epochs``, ``batch_size``, ``optimizer``, ``lr``,
            ``weight_decay``, ``step_size``, ``gamma``, ``audio_smoothing``,
            ``visual_smoothing`` (the ``avvp.train`` section).
        device: where model and data live.
        refinement: slice labels and/or auxiliary partners. (default: none)
        on_epoch: called with each epoch's row. (default: none)
        resume: where the per-epoch state lives. (default: none, not saved)
        precision: ``train.precision``, the autocast of the training steps and of the
            validation (:mod:`pipeline.training.precision`; ``fp16`` adds the gradient
            scaler). (default: ``fp32``)
    """
    set_seed(config["seed"])
    schedule = SimpleNamespace(scheduler="step", **config)  # Tian et al.'s StepLR
    optimizer = make_optimizer(schedule, model.parameters())
    scheduler = make_scheduler(schedule, optimizer)
    scaler = make_scaler(device, precision)
    generator = torch.Generator().manual_seed(config["seed"])
    best = FitResult({}, 0, {SELECTION: -1.0})
    log = on_epoch or (lambda row: None)
    saved = resume.load() if resume is not None else None
    if saved is not None:
        _restore(saved, model, optimizer, scheduler, scaler, generator)
        best = FitResult(**saved["best"])
        for row in best.history:
            log(row)
    n = len(train.names)
    for epoch in range(len(best.history) + 1, config["epochs"] + 1):
        model.train()
        lr, total = optimizer.param_groups[0]["lr"], 0.0
        for index in torch.randperm(n, generator=generator).split(config["batch_size"]):
            index = index.to(device)
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, precision):
                loss = _loss(model, train, index, config, refinement)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += loss.item() * len(index)
        scheduler.step()
        metrics = evaluate_han(model, val, precision=precision)
        row = {
            "epoch": epoch,
            "train_loss": total / n,
            "lr": lr,
            f"val_{SELECTION}": metrics[SELECTION],
        }
        best.history.append(row)
        if metrics[SELECTION] >= best.best_val[SELECTION]:  # a tie: the later epoch
            best.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            best.best_epoch, best.best_val = epoch, metrics
        log(row)
        if resume is not None:
            state = _training_state(model, optimizer, scheduler, scaler, generator)
            resume.save({"epoch": epoch, "best": vars(best), **state})
    return best


def save_han(path: str | Path, state: dict[str, torch.Tensor], kwargs: dict, **meta: Any) -> None:
    """Save HAN's state and constructor arguments, atomically, in the layout of
    :func:`pipeline.training.checkpoint.save_checkpoint` (through a file object: the same bytes for
    the same state)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        torch.save({"name": "han", "kwargs": kwargs, "state": state, **meta}, file)


def load_han(path: str | Path, device: torch.device) -> tuple[HAN, dict]:
    """Rebuild the HAN of a checkpoint on ``device``, in eval mode (``weights_only`` load)."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: checkpoint not found (run avvp_train first)")
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 (any unpickling failure means a bad file)
        raise PipelineError(f"{path}: not a readable checkpoint ({err})") from None
    if not isinstance(saved, dict) or saved.get("name") != "han" or "state" not in saved:
        raise PipelineError(f"{path}: expected a HAN checkpoint (name 'han', kwargs, state)")
    model = HAN(**saved["kwargs"]).to(device)
    model.load_state_dict(saved["state"])
    model.eval()
    return model, {k: v for k, v in saved.items() if k != "state"}
