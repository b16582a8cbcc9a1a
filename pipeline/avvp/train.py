"""The AVVP task's part of training, prediction and evaluation (an LLP store in memory).

Training runs through the shared loop (:func:`pipeline.training.loop.fit`, the same as
AVEL's: resume after a kill, precision, deterministic setting); this module gives it the
AVVP task's hooks: shuffled batches of video indices into the data held in memory
(:class:`IndexBatches`), the objective (:class:`AVVPObjective`: Tian et al.'s guided weak
loss with label smoothing, :func:`pipeline.losses.han_loss`, after the task's attentive
MMIL pooling, plus seed 004's refinement loss or auxiliary objective,
:mod:`pipeline.avvp.refine`) and the checkpoint choice (:func:`validation`: the best
segment-level Type@AV on the **validation** split, the later epoch on a tie, as their
code); the test split is never looked at during training. Adam and a step schedule, as
theirs, from ``avvp.train``.

The frames of a segment are averaged when the data is loaded: HAN projects them linearly
before averaging, so this is the same model on 8 times less memory (the release's train
split then takes 0.9 GB instead of 6.6 GB).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.avvp import store as llp
from pipeline.avvp.metrics import avvp_metrics, binarize
from pipeline.avvp.refine import STREAMS, auxiliary_loss, refinement_loss
from pipeline.losses import han_loss, mmil_pool
from pipeline.training.loop import (
    Trainer,
    TrainResult,
    Validation,
    fit,
    make_optimizer,
    make_scheduler,
    set_seed,
)
from pipeline.training.precision import autocast
from pipeline.training.resume import ResumeFile

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
        """The data-derived constructor arguments of an AVVP model
        (:data:`pipeline.models.AVVP_DATA_DIMS`)."""
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
def predict_avvp(
    model: nn.Module, data: AVVPData, batch_size: int = 128, precision: str = "fp32"
) -> tuple[np.ndarray, np.ndarray]:
    """Segment probabilities ``(n, T, 2, C)`` and video probabilities ``(n, C)``.

    Args:
        model: an AVVP model (:class:`pipeline.models.AVVPModel`).
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


def evaluate_avvp(
    model: nn.Module, data: AVVPData, batch_size: int = 128, precision: str = "fp32"
) -> dict[str, float]:
    """Every AVVP metric of ``model`` on a split with dense labels (:func:`predict_avvp`)."""
    frame_probs, video_probs = predict_avvp(model, data, batch_size, precision)
    return avvp_metrics(binarize(frame_probs, video_probs), data.dense)


def validation(val: AVVPData, precision: str = "fp32") -> Validation:
    """The AVVP checkpoint choice: the best segment-level Type@AV on ``val``; on equal
    scores the later epoch, as Tian et al.'s official code (``if F >= best_F``,
    ``main_avvp.py``; tests/avvp/test_train.py checks it)."""
    return Validation(
        SELECTION, lambda model: evaluate_avvp(model, val, precision=precision), later_on_tie=True
    )


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


class IndexBatches:
    """One epoch's shuffled mini-batches of the training videos held in memory.

    Each batch is ``{"index": (b,) indices on the data's device, "labels": (b, C) weak
    labels}``; the order comes from :attr:`generator` (a CPU generator seeded with
    ``seed``, saved and restored by the shared loop's resume state).

    Args:
        train: the training split.
        batch_size: videos per mini-batch.
        seed: seed of the shuffle.
    """

    def __init__(self, train: AVVPData, batch_size: int, seed: int) -> None:
        self.train, self.batch_size = train, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        order = torch.randperm(len(self.train.names), generator=self.generator)
        for index in order.split(self.batch_size):
            index = index.to(self.train.weak.device)
            yield {"index": index, "labels": self.train.weak[index]}


class AVVPObjective:
    """One mini-batch's loss: HAN's guided weak loss, plus refinement or auxiliary terms.

    ``objective(model, batch, epoch, device)``, as the shared loop's objectives.

    Args:
        train: the training split, on the training device.
        audio_smoothing: :math:`\\epsilon` of the audio target (``avvp.train``).
        visual_smoothing: :math:`\\epsilon` of the visual target (``avvp.train``).
        refinement: slice labels and/or auxiliary partners. (default: none)
    """

    def __init__(
        self,
        train: AVVPData,
        audio_smoothing: float,
        visual_smoothing: float,
        refinement: Refinement | None = None,
    ) -> None:
        self.train, self.refinement = train, refinement
        self.smoothing = (audio_smoothing, visual_smoothing)

    def __call__(
        self, model: nn.Module, batch: dict[str, torch.Tensor], epoch: int, device: torch.device
    ) -> torch.Tensor:
        index, labels, train = batch["index"], batch["labels"], self.train
        streams = {k: v[index] for k, v in train.streams.items()}
        output = model(streams["audio"], streams["frames"], streams["snippets"])
        loss = han_loss(mmil_pool(output), labels, *self.smoothing)
        refinement = self.refinement
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
                model,
                streams,
                second,
                union,
                refinement.starts,
                refinement.window,
                *self.smoothing,
            )
            loss = loss + refinement.auxiliary_weight * aux
        return loss


def fit_avvp(
    model: nn.Module,
    train: AVVPData,
    val: AVVPData,
    config: dict[str, Any],
    device: torch.device,
    refinement: Refinement | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    resume: ResumeFile | None = None,
    precision: str = "fp32",
) -> TrainResult:
    """Train an AVVP model through the shared loop and keep the state with the best
    validation Type@AV (segment level; :func:`validation`).

    After each epoch the whole training state goes to ``resume`` (the shared
    :class:`pipeline.training.resume.ResumeFile`); a run that finds a state of its own there
    continues after that epoch, replaying the logged rows through ``on_epoch``, and ends
    as an uninterrupted run would (tests/avvp/test_train.py).

    Args:
        model: the model, on ``device``.
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
    objective = AVVPObjective(
        train, config["audio_smoothing"], config["visual_smoothing"], refinement
    )
    trainer = Trainer(
        model, objective, optimizer, make_scheduler(schedule, optimizer), device, precision
    )
    batches = IndexBatches(train, config["batch_size"], config["seed"])
    return fit(
        trainer,
        batches,
        validation(val, precision),
        config["epochs"],
        name="train avvp",
        resume=resume,
        on_epoch=on_epoch,
    )
