"""The models of both tasks: a model's module is imported when its name is looked up (lazy
registration).

The contract (what a model is, how it declares its hyperparameters, :func:`register`) is
in :mod:`pipeline.models.base`, with the registry :data:`MODELS`, whose index of names is
read from the files of this package without importing them. A stage that runs one model
imports that model's module and what it imports, nothing of the others:
:func:`model_files` lists those files and :func:`code_fingerprint` hashes them, for the
``model_code`` stage that DVC's training stages depend on (docs/design.md §4, §8). Here,
the registry is looked up by ``model.name`` (AVEL) or ``avvp.model.name`` (AVVP):
:func:`build_model` checks the keyword arguments against the constructor so that a
misspelled ``model.<key>`` is reported by name, :func:`model_arguments` picks a model's
arguments out of the flat ``model`` section and :func:`check_model` runs the constructor's
own checks (e.g. EDRNet's kernel and layers fitting 10 segments) before any work.
"""

import inspect
from pathlib import Path

import torch

from pipeline.config.imports import local_imports
from pipeline.config.model_index import fingerprint_text
from pipeline.errors import PipelineError
from pipeline.models.base import (
    AVVP_DATA_DIMS,
    DATA_DIMS,
    MODELS,
    TASK_MODELS,
    AVELModel,
    AVVPModel,
    Hyper,
    Model,
    constructor_keywords,
    declarations,
    register,
)

__all__ = [
    "AVVP_DATA_DIMS",
    "DATA_DIMS",
    "MODELS",
    "TASK_MODELS",
    "AVELModel",
    "AVVPModel",
    "Hyper",
    "Model",
    "build_model",
    "check_model",
    "code_fingerprint",
    "declarations",
    "model_arguments",
    "model_class",
    "model_files",
    "register",
]


def model_class(name: str, task: str | None = None) -> type[Model]:
    """The registered class ``name``, its module imported now if it was not.

    Args:
        name: a registered name.
        task: the task the model must serve (default ``None``: any).

    Raises:
        PipelineError: no model file registers ``name`` (removed or renamed), or it serves
            another task: the message lists the valid names.
    """
    key = f"{TASK_MODELS[task].section}.name" if task else "model.name"
    if name not in MODELS:
        valid = MODELS.of_task(task) if task else sorted(MODELS)
        raise PipelineError(f"{key}: unknown model {name!r}; valid names: {', '.join(valid)}")
    try:
        cls = MODELS[name]
    except KeyError:
        module = MODELS.index()[name]
        raise PipelineError(f"{key}: {module} was imported but did not register {name!r}") from None
    if task and cls.task != task:
        raise PipelineError(
            f"{key}: model {name!r} serves the {cls.task} task, not {task}; valid names: "
            f"{', '.join(MODELS.of_task(task))}"
        )
    return cls


def model_files(name: str, root: str | Path = ".") -> list[str]:
    """The project files that model ``name`` runs: its module and every file it imports.

    Shared layers (``dpnet_layers.py``, ``graph.py``, ``rgct.py``) count for the models
    whose module imports them, the contract (``base.py``) and the losses for every model.

    Args:
        name: a registered name.
        root: the repository root (default: the current directory).

    Returns:
        Paths relative to ``root``, sorted (:func:`pipeline.config.imports.local_imports`).
    """
    source = Path(inspect.getfile(model_class(name))).resolve()
    root = Path(root).resolve()
    if not source.is_relative_to(root):
        raise PipelineError(f"model {name!r}: its file {source} is outside the project {root}")
    return local_imports(source.relative_to(root), root)


def code_fingerprint(name: str, root: str | Path = ".") -> str:
    """The JSON text ``{"files": {path: sha256}, "model": name}`` of :func:`model_files`.

    Written by the ``model_code`` stage to ``data/model_code.json``; the stages that build
    a model depend on that file instead of on every model file, so that adding a model, or
    editing a file that model ``name`` does not import, leaves its results valid. The
    tables command compares an earlier experiment's recorded hash with this text's.

    Args:
        name: a registered name.
        root: the repository root (default: the current directory).
    """
    return fingerprint_text(name, model_files(name, root), root)


def model_arguments(
    name: str, hyperparameters: dict[str, object], dims: dict[str, int]
) -> tuple[dict[str, object], list[str]]:
    """Constructor arguments of model ``name`` from its flat model section and the data.

    The ``model`` section is flat and shared by all models (docs/design.md §5), so that
    ``-S model.name=<other>`` works without rewriting it: a key only other models read is
    left out and reported (a key that no model reads is rejected by :mod:`pipeline.config.schema`).

    Args:
        name: a key of :data:`MODELS`.
        hyperparameters: the ``model`` section without ``name``.
        dims: data-derived sizes (its task's :attr:`~pipeline.models.base.Model.data_dims`);
            those the model does not take are dropped.

    Returns:
        ``(kwargs, ignored)``: the arguments for :func:`build_model`, in a fixed order (the
        data sizes in its task's order, then the declared hyperparameters in theirs:
        a checkpoint's bytes do not depend on the order of ``params.yaml``), and the keys
        of the section that model ``name`` does not read.
    """
    cls = model_class(name)
    accepted = constructor_keywords(cls)
    given = {**dims, **hyperparameters}
    order = [*cls.data_dims, *(hyper.name for hyper in cls.hyperparameters)]
    kwargs = {key: given[key] for key in order if key in given and key in accepted}
    return kwargs, sorted(set(hyperparameters) - set(accepted))


def build_model(name: str, **kwargs: object) -> Model:
    """Instantiate the registered model ``name`` with ``kwargs``.

    Args:
        name: a key of :data:`MODELS`.
        **kwargs: constructor arguments (hyperparameters and data-derived dims).

    Returns:
        The new model.

    Raises:
        PipelineError: ``name`` is not registered, or a key is not a constructor argument.
    """
    cls = model_class(name)
    accepted = list(constructor_keywords(cls))
    unknown = [key for key in kwargs if key not in accepted]
    if unknown:
        bad = ", ".join(f"{cls.section}.{key}" for key in unknown)
        raise PipelineError(
            f"{bad}: not accepted by model {name!r}; accepted keys: {', '.join(accepted)}"
        )
    return cls(**kwargs)


def check_model(name: str, hyperparameters: dict[str, object]) -> None:
    """Check a model section against model ``name``'s constructor, before any work.

    The model is built on PyTorch's ``meta`` device (no memory, no computation) with the
    default data sizes, so every constructor check runs in milliseconds.

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
