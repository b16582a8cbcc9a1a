"""What a training stage of either task chooses, builds and writes around the loop.

:class:`ModelChoice` resolves a checked model section (``model`` for AVEL, ``avvp.model``
for AVVP) to its registered class once and builds the model with the data's sizes;
:func:`save_outputs` writes the best checkpoint and the metrics atomically and removes the
resume state. Used by :mod:`pipeline.training.runner` (AVEL) and ``stages/avvp_train.py``.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pipeline.config import paths
from pipeline.config.schema import ModelSection
from pipeline.io import write_json
from pipeline.models import Model, build_model, model_arguments, model_class
from pipeline.training.checkpoint import save_checkpoint
from pipeline.training.loop import TrainResult
from pipeline.training.resume import ResumeFile


@dataclass(frozen=True)
class ModelChoice:
    """The model a training stage trains, resolved once from a checked model section.

    Args:
        name: its registry name (``model.name`` or ``avvp.model.name``).
        cls: its class.
        hyperparameters: the keys of the section besides ``name``.
    """

    name: str
    cls: type[Model]
    hyperparameters: dict[str, Any]

    @classmethod
    def of(cls, section: ModelSection | Mapping[str, Any], task: str = "avel") -> "ModelChoice":
        """Resolve the checked section (its values passed the model's own checks).

        Args:
            section: the checked section, as its schema object or as a mapping.
            task: the task whose model it chooses (default ``"avel"``; ``"avvp"``).
        """
        if isinstance(section, Mapping):
            name = section["name"]
            hyperparameters = {k: v for k, v in section.items() if k != "name"}
        else:
            name, hyperparameters = section.name, section.hyperparameters()
        return cls(name, model_class(name, task), hyperparameters)

    def build(
        self, dims: dict[str, int], device: torch.device
    ) -> tuple[Model, dict[str, Any], list[str]]:
        """The model on ``device``, with the data-derived sizes ``dims``.

        Returns:
            ``(model, kwargs, ignored)``: the model, its constructor arguments (saved in
            the checkpoint) and the section's keys it does not read
            (:func:`pipeline.models.model_arguments`).
        """
        kwargs, ignored = model_arguments(self.name, self.hyperparameters, dims)
        return build_model(self.name, **kwargs).to(device), kwargs, ignored

    @property
    def pooled(self) -> Path | None:
        """The pooled features it reads, or ``None`` for a model that reads the maps."""
        return paths.pooled_features(self.cls.needs_maps)


def save_outputs(
    result: TrainResult,
    model: ModelChoice,
    kwargs: dict[str, Any],
    files: tuple[Path, Path],
    metrics: dict[str, Any],
    resume: ResumeFile,
    **meta: Any,
) -> None:
    """Write a training stage's outputs, each atomically, then remove its resume state.

    Args:
        result: the outcome of :func:`pipeline.training.loop.fit`.
        model: the chosen model.
        kwargs: its constructor arguments.
        files: ``(checkpoint, metrics file)``.
        metrics: the entries of the metrics file.
        resume: the stage's resume state, removed once the outputs are written.
        **meta: entries saved beside the checkpoint's state (epoch, ...).
    """
    checkpoint, metrics_file = files
    save_checkpoint(checkpoint, result.best_state, model.name, kwargs, **meta)
    write_json(metrics_file, metrics)
    resume.remove()
