"""Model registry: ``params.yaml``'s ``model.name`` -> model class.

Every model maps ``(audio (B, T, A), visual)`` to raw segment scores ``(B, T, C)`` and
defines its weakly-supervised objective ``wsel_loss(scores, video_labels)`` and its
video-level prediction ``video_probabilities(scores)``; ``needs_maps`` says whether it
takes the 7x7 visual maps or the pooled features.
:func:`build_model` checks the keyword arguments against the constructor's signature so a
misspelled ``model.<key>`` in ``params.yaml`` is reported by name instead of as a
``TypeError``.
"""

import torch
from torch import nn

from pipeline.errors import PipelineError
from pipeline.models.ave import AVEBaseline
from pipeline.models.cmran import CMRAN
from pipeline.models.dpnet import DPNET_VARIANTS
from pipeline.models.edrnet import EDRNet
from pipeline.models.psp import PSP
from pipeline.signature import keyword_names

MODELS: dict[str, type[nn.Module]] = {
    "ave": AVEBaseline,
    **DPNET_VARIANTS,
    "edrnet": EDRNet,
    "psp": PSP,
    "cmran": CMRAN,
}

# Constructor arguments that the trainer derives from the data, not from ``params.yaml``.
DATA_DIMS = ("audio_dim", "visual_dim", "n_regions", "n_classes")


def _model_class(name: str) -> type[nn.Module]:
    """Return the registered class ``name``; :class:`PipelineError` if there is none."""
    if name not in MODELS:
        raise PipelineError(
            f"model.name: unknown model {name!r}; valid names: {', '.join(sorted(MODELS))}"
        )
    return MODELS[name]


def model_hyperparameters(name: str) -> list[str]:
    """The constructor keys of model ``name`` that ``params.yaml`` may set.

    Args:
        name: a key of :data:`MODELS`.

    Returns:
        The accepted keyword arguments minus the data-derived :data:`DATA_DIMS`.
    """
    return [key for key in keyword_names(_model_class(name)) if key not in DATA_DIMS]


def all_hyperparameters() -> list[str]:
    """Every key that some registered model reads (the valid keys of ``params.yaml: model``)."""
    return sorted({key for name in MODELS for key in model_hyperparameters(name)})


def model_arguments(
    name: str, hyperparameters: dict[str, object], dims: dict[str, int]
) -> tuple[dict[str, object], list[str]]:
    """Constructor arguments of model ``name`` from the flat ``model`` section and the data.

    The ``model`` section is flat and shared by all models (DESIGN.md §5), so that
    ``-S model.name=<other>`` works without rewriting it: a key only other models read is
    left out and reported (a key that no model reads is rejected by :mod:`pipeline.schema`).

    Args:
        name: a key of :data:`MODELS`.
        hyperparameters: the ``model`` section without ``name``.
        dims: data-derived sizes (:data:`DATA_DIMS`); those the model does not take are
            dropped.

    Returns:
        ``(kwargs, ignored)``: the arguments for :func:`build_model`, and the keys of the
        section that model ``name`` does not read.
    """
    accepted = set(keyword_names(_model_class(name)))
    kwargs = {k: v for k, v in {**dims, **hyperparameters}.items() if k in accepted}
    return kwargs, sorted(set(hyperparameters) - accepted)


def build_model(name: str, **kwargs: object) -> nn.Module:
    """Instantiate the registered model ``name`` with ``kwargs``.

    Args:
        name: a key of :data:`MODELS`.
        **kwargs: constructor arguments (hyperparameters and data-derived dims).

    Returns:
        The new model.

    Raises:
        PipelineError: ``name`` is not registered, or a key is not a constructor argument.
    """
    cls = _model_class(name)
    accepted = keyword_names(cls)
    unknown = [key for key in kwargs if key not in accepted]
    if unknown:
        bad = ", ".join(f"model.{key}" for key in unknown)
        raise PipelineError(
            f"{bad}: not accepted by model {name!r}; accepted keys: {', '.join(accepted)}"
        )
    return cls(**kwargs)


def check_model(name: str, hyperparameters: dict[str, object]) -> None:
    """Check the ``model`` section against model ``name``'s constructor, before any work.

    The model is built on PyTorch's ``meta`` device (no memory, no computation) with the
    official data sizes, so every constructor check runs (e.g. EDRNet's kernel and layers
    fitting 10 segments) in milliseconds.

    Args:
        name: ``model.name``.
        hyperparameters: the ``model`` section without ``name``.

    Raises:
        PipelineError: an unknown name (the valid ones listed) or a value the constructor
            rejects.
    """
    kwargs, _ = model_arguments(name, hyperparameters, {})
    with torch.device("meta"):
        build_model(name, **kwargs)
