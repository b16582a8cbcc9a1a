r"""The model contract: what the pipeline asks of a model, written once, for each task.

A model serves one task (:attr:`Model.task`): AVEL (audio-visual event localization on
AVE, :class:`AVELModel`) or AVVP (audio-visual video parsing on LLP, :class:`AVVPModel`).
It is registered under a name with :func:`register`, in one registry for both tasks; that
name is ``params.yaml``'s ``model.name`` (AVEL) or ``avvp.model.name`` (AVVP). What else
each task says (its labels, data, metrics and refinement) is :mod:`pipeline.tasks`.

An :class:`AVELModel` maps audio ``(B, T, A)`` and visual features
(pooled ``(B, T, V)`` or maps ``(B, T, H, W, V)``, see :attr:`AVELModel.needs_maps`) to raw
segment scores ``(B, T, C)``. Everything else has a default that fits most models:

=========================  ==========================  ======================================
member                     default                     used by
=========================  ==========================  ======================================
:attr:`hyperparameters`    ``()``                      params schema, every training stage
:attr:`needs_maps`         ``False`` (pooled)          every stage that feeds the model
:attr:`uses_graph`         ``False``                   SEL with ``augment.link``
:attr:`outputs`            ``()`` (one output)         evaluate (``model_output_<name>``)
:attr:`min_segments`       ``1``                       predict (videos shorter are refused)
:attr:`seg_weight`         ``1.0``                     SEL objectives
:meth:`forward`            (required)                  everything
:meth:`feature_loss`       none                        SEL objectives, when overridden
:meth:`video_probabilities`  mean-pooled softmax       WSEL refine (Step 2), evaluate
:meth:`wsel_loss`          mean-pooled cross-entropy   WSEL, auxiliary objective, retrain
=========================  ==========================  ======================================

An :class:`AVVPModel` maps audio ``(B, T, A)``, frame ``(B, T * k, F)`` and snippet features
``(B, T, S)`` to per-modality segment probabilities and attention logits
(:class:`pipeline.losses.AVVPOutput`), which the task's MMIL pooling and weak loss
(:func:`pipeline.losses.mmil_pool`, :func:`pipeline.losses.han_loss`) and its refinement
(:mod:`pipeline.avvp.refine`) use.

The constructor takes keyword arguments only, each with a default: the data-derived sizes
it needs among its task's :attr:`Model.data_dims` (:data:`DATA_DIMS` for AVEL,
:data:`AVVP_DATA_DIMS` for AVVP), and one argument per declared :class:`Hyper`. The
defaults are written once, in the constructor's signature; :func:`register` checks that
signature and the declarations against each other when the model's module is imported.
"""

import importlib
import inspect
import math
import re
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from pipeline.config.model_index import MODEL_SECTIONS, model_index
from pipeline.config.signature import keyword_defaults as constructor_keywords
from pipeline.losses import AVVPOutput, mean_pooled_loss, mean_pooled_probabilities

# Constructor arguments that the trainer derives from the data, not from ``params.yaml``:
# audio feature size, visual channels, visual regions per segment (H * W) and classes.
DATA_DIMS = ("audio_dim", "visual_dim", "n_regions", "n_classes")
# The same for AVVP: audio, 2D frame and 3D snippet feature sizes and LLP's event classes.
AVVP_DATA_DIMS = ("audio_dim", "frame_dim", "snippet_dim", "n_classes")

_KINDS = (int, float, bool, str, list)
_SYMBOLS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Hyper:
    """One hyperparameter a model reads from ``params.yaml: model.<name>``.

    Its default is the constructor's default for the argument of the same name.

    Args:
        name: the key (and constructor argument).
        kind: ``int``, ``float``, ``bool``, ``str`` or ``list`` (a YAML list).
        description: one line: what it is, with the paper's symbol and equation.
        unit: its unit, if any (default ``""``).
        ge: inclusive lower bound of a number (default ``None``).
        gt: exclusive lower bound (default ``None``).
        le: inclusive upper bound (default ``None``).
        lt: exclusive upper bound (default ``None``).
        choices: the allowed values of an ``int`` or ``str``, or the allowed items of a
            ``list`` (default ``None``: any).
        rule: a further check of a value: returns what is wrong, or ``None`` (default
            ``None``).
    """

    name: str
    kind: type
    description: str
    unit: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple | None = None
    rule: Callable[[Any], str | None] | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise TypeError(f"Hyper {self.name}: kind must be one of {_KINDS}, not {self.kind}")

    @property
    def bounds(self) -> dict[str, float]:
        """The numeric bounds that are set, e.g. ``{"ge": 0, "lt": 1}``."""
        return {key: getattr(self, key) for key in _SYMBOLS if getattr(self, key) is not None}

    def expected(self) -> str:
        """What a valid value is, in words (for error messages)."""
        if self.kind is list:
            items = "" if self.choices is None else f" of {', '.join(map(repr, self.choices))}"
            return f"a list{items}"
        if self.choices is not None:
            return f"one of {', '.join(map(repr, self.choices))}"
        limits = " and ".join(f"{_SYMBOLS[k]} {v}" for k, v in self.bounds.items())
        noun = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
        return noun[self.kind] + (f" {limits}" if limits else "")

    def _typed(self, value: Any) -> bool:
        if self.kind is bool:
            return isinstance(value, bool)
        if isinstance(value, bool):
            return False
        if self.kind is float:
            return isinstance(value, int | float) and math.isfinite(value)
        if self.kind is list:
            return isinstance(value, list | tuple)
        return isinstance(value, self.kind)

    def _within(self, value: Any) -> bool:
        if self.kind is list:
            return self.choices is None or all(item in self.choices for item in value)
        if self.choices is not None:
            return value in self.choices
        checks = {"ge": value.__ge__, "gt": value.__gt__, "le": value.__le__, "lt": value.__lt__}
        return all(checks[key](bound) for key, bound in self.bounds.items())

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` for this hyperparameter, or ``None`` if nothing."""
        if not self._typed(value) or not self._within(value):
            return f"expected {self.expected()}"
        return None if self.rule is None else self.rule(value)


class Model(nn.Module):
    """What every registered model declares, whatever its task.

    A model subclasses its task's base class (:class:`AVELModel` or :class:`AVVPModel`),
    which sets :attr:`task` and :attr:`data_dims`, and declares :attr:`hyperparameters`.
    """

    task: ClassVar[str] = ""
    """The task the model serves: ``avel`` or ``avvp`` (set by the task's base class)."""

    data_dims: ClassVar[tuple[str, ...]] = ()
    """The constructor arguments its task derives from the data (set by the base class)."""

    section: ClassVar[str] = ""
    """Its task's model section in ``params.yaml`` (set by the base class)."""

    hyperparameters: ClassVar[tuple[Hyper, ...]] = ()
    """The keys of the task's model section (``params.yaml: model`` or ``avvp.model``) that
    this model reads (params schema, docs). Their order is that of the constructor
    arguments saved in a checkpoint: changing it changes the checkpoints' bytes (not their
    weights)."""

    family: ClassVar[str] = ""
    """How the generated parameter table names the models sharing these declarations
    (default ``""``: each registry name)."""


class AVVPModel(Model):
    r"""Base class of the AVVP models (seed 004 App. A.1): three feature streams in,
    per-modality segment probabilities and attention logits out.

    ``B`` videos, ``T`` segments (10 in LLP), ``C`` event classes (25, no background: an
    AVVP label is multi-label), ``A`` audio, ``F`` frame and ``S`` snippet features.
    """

    task = "avvp"
    data_dims = AVVP_DATA_DIMS
    section = MODEL_SECTIONS["avvp"]

    def forward(
        self, audio: torch.Tensor, frames: torch.Tensor, snippets: torch.Tensor
    ) -> AVVPOutput:
        """Segment probabilities and attention logits of a batch.

        Args:
            audio: ``(B, T, A)`` audio features.
            frames: ``(B, T * k, F)`` frame features, ``k`` consecutive frames per segment
                (the training data averages them: ``k`` = 1).
            snippets: ``(B, T, S)`` snippet features.

        Returns:
            ``probs``, ``time_logits`` and ``modality_logits``, each ``(B, T, 2, C)``.
        """
        raise NotImplementedError


class AVELModel(Model):
    r"""Base class of the AVEL models: the attributes and methods the pipeline uses.

    Subclasses implement :meth:`forward` and declare :attr:`hyperparameters`; the other
    members have defaults. A model trained in every setting meets these shapes: ``B``
    videos, ``T`` segments (10 in AVE), ``C`` classes including background (the last),
    ``A`` audio features, ``V`` visual channels and ``H x W`` visual regions.
    """

    task = "avel"
    data_dims = DATA_DIMS
    section = MODEL_SECTIONS["avel"]

    needs_maps: ClassVar[bool] = False
    """``True``: ``visual`` is the ``(B, T, H, W, V)`` maps, read from file batch by batch;
    ``False``: the ``(B, T, V)`` maps averaged over ``H x W`` (``data/pooled``), held in
    memory (on the GPU when it fits). Every stage that feeds the model reads it."""

    uses_graph: ClassVar[bool] = False
    """Whether :meth:`forward` takes ``graph`` and a linked graph changes its output. SEL
    with ``augment.replicate`` and ``augment.link`` then passes
    :class:`~pipeline.models.graph.PairedBatch` (seed 001 eqs 17-21); other models
    train on the replicas unlinked (``link_ignored`` in the training metrics)."""

    has_feature_loss: ClassVar[bool] = False
    """Set automatically: whether the class overrides :meth:`feature_loss`."""

    outputs: tuple[str, ...] = ()
    """The named outputs ``forward(..., output=name)`` can return, the last one being the
    default; ``()`` for a model with one output (default). The evaluate stage scores
    every other output as ``model_output_<name>`` (EDRNet's branches, seed 002 Table 4)."""

    min_segments: int = 1
    """The shortest video, in segments, that :meth:`forward` accepts (predict refuses a
    shorter one with this number; default 1)."""

    seg_weight: float = 1.0
    r"""The weight of the SEL segment cross-entropy (EDRNet's :math:`\lambda_1`; default 1)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.has_feature_loss = cls.feature_loss is not AVELModel.feature_loss

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, **options: Any
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Raw (pre-softmax) segment scores.

        Args:
            audio: ``(B, T, A)`` audio features.
            visual: ``(B, T, V)`` pooled features, or ``(B, T, H, W, V)`` maps when
                :attr:`needs_maps`.
            **options: keywords the pipeline passes only to models that declare them:
                ``graph`` (:attr:`uses_graph`: ``None`` for each video's own graph, or a
                :class:`~pipeline.models.graph.PairedBatch`), ``output`` (one of
                :attr:`outputs`) and ``return_features`` (with :meth:`feature_loss`:
                also return the ``(B, T, D)`` features that loss acts on).

        Returns:
            ``(B, T, C)`` scores, or ``(scores, features)`` with ``return_features``.
        """
        raise NotImplementedError

    def feature_loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """An extra SEL loss on the features of ``forward(..., return_features=True)``.

        Added to the weighted segment cross-entropy by the SEL objectives when a model
        overrides it (EDRNet's Land-Shore-Sea loss, seed 002 eqs 8-10); never in WSEL.

        Args:
            features: ``(B, T, D)`` features.
            labels: ``(B, T)`` long segment classes.

        Returns:
            The scalar loss, weighted by the model itself.
        """
        raise NotImplementedError

    def video_probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        """The model's video-level prediction ``(B, T, C)`` -> ``(B, C)`` probabilities.

        Refine (seed 004 Step 2) thresholds it on synthetic videos, and evaluate scores
        its arg-max repeated over the segments (``model_repeat``). Default: the mean of
        the segment softmax (:func:`pipeline.losses.mean_pooled_probabilities`).
        """
        return mean_pooled_probabilities(scores)

    def wsel_loss(self, scores: torch.Tensor, video_labels: torch.Tensor) -> torch.Tensor:
        """The weakly-supervised loss of ``(B, T, C)`` scores and ``(B, C)`` video labels.

        Used by WSEL training (seed 004 Step 1), as :math:`g` of the auxiliary objective
        (eqs 15-18) and of the label-refinement loss (Step 3, eqs 12-13), on videos and on
        slices alike. Default: cross-entropy of the mean-pooled segment softmax with the
        normalised labels (:func:`pipeline.losses.mean_pooled_loss`).
        """
        return mean_pooled_loss(scores, video_labels)


TASK_MODELS: dict[str, type[Model]] = {"avel": AVELModel, "avvp": AVVPModel}
"""Each task's model base class, by task name."""


class Registry(MutableMapping):
    """The registry, model name -> model class: a model's module is imported on lookup.

    The index (name -> module) is read from the files of ``pipeline/models/`` without
    importing them: the ``@register("<name>")`` decorators, found by :mod:`ast`. Looking a
    name up imports its module only, so that a stage imports, and DVC records, the files
    of the model it runs and not those of every model (docs/design.md §8). Iterating lists
    every name; reading every value imports every model module. A model registered
    elsewhere (a test file) is held as registered.

    Args:
        package: the package of the model modules (``pipeline.models``).
        directory: its directory.
    """

    def __init__(self, package: str, directory: Path) -> None:
        self.package, self.directory = package, directory
        self._classes: dict[str, type[Model]] = {}

    def index(self) -> dict[str, str]:
        """``{name: module}`` of every ``@register("<name>")`` in the package's files
        (:func:`pipeline.config.model_index.model_index`).

        Raises:
            TypeError: two files register the same name.
        """
        return model_index(self.directory, self.package)

    def loaded(self) -> dict[str, type[Model]]:
        """The classes registered so far, without importing anything."""
        return dict(self._classes)

    def __contains__(self, name: object) -> bool:
        return name in self._classes or name in self.index()

    def of_task(self, task: str) -> list[str]:
        """The names of the models serving ``task``, sorted (imports every model module)."""
        return [name for name in sorted(self) if self[name].task == task]

    def __getitem__(self, name: str) -> type[Model]:
        if name not in self._classes and name in (index := self.index()):
            importlib.import_module(index[name])
        if name not in self._classes:
            raise KeyError(name)
        return self._classes[name]

    def __setitem__(self, name: str, cls: type[Model]) -> None:
        self._classes[name] = cls

    def __delitem__(self, name: str) -> None:
        del self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self._classes) | set(self.index())))

    def __len__(self) -> int:
        return len(set(self._classes) | set(self.index()))


MODELS = Registry("pipeline.models", Path(__file__).parent)
"""The registry of both tasks: name -> model class, filled by :func:`register` on lookup."""


def _check_contract(name: str, cls: type) -> None:
    """Raise :class:`TypeError` unless ``cls`` can be registered as ``name``."""
    where = f"@register({name!r}) on {cls.__name__}"
    if not NAME.match(name):
        raise TypeError(f"{where}: expected a name of lowercase letters, digits and _")
    bases = " or ".join(f"pipeline.models.base.{base.__name__}" for base in TASK_MODELS.values())
    if not (isinstance(cls, type) and issubclass(cls, Model)) or cls.task not in TASK_MODELS:
        raise TypeError(f"{where}: expected a subclass of {bases}")
    taken = MODELS.loaded().get(name)
    if taken is not None and taken is not cls:
        raise TypeError(f"{where}: the name is taken by {taken.__name__}")
    in_package = cls.__module__.startswith(f"{MODELS.package}.")
    if in_package and MODELS.index().get(name) != cls.__module__:
        raise TypeError(
            f"{where}: expected @register with the name as a string literal in "
            f"{cls.__module__}, so that the registry's index finds it without importing"
        )
    signature = inspect.signature(cls).parameters.values()
    required = [p.name for p in signature if p.default is inspect.Parameter.empty]
    if required:
        raise TypeError(f"{where}: constructor arguments without a default: {required}")
    keywords = constructor_keywords(cls)
    declared = [hyper.name for hyper in cls.hyperparameters]
    accepted = [key for key in keywords if key not in cls.data_dims]
    if sorted(declared) != sorted(accepted):
        raise TypeError(
            f"{where}: hyperparameters {sorted(declared)} must be exactly the constructor "
            f"arguments besides {cls.data_dims}: {sorted(accepted)}"
        )
    for hyper in cls.hyperparameters:
        problem = hyper.problem(keywords[hyper.name])
        if problem is not None:
            raise TypeError(f"{where}: default of {hyper.name}: {problem}")


def register(name: str) -> Callable[[type[Model]], type[Model]]:
    """Class decorator: register a model as ``model.name: <name>`` (``avvp.model.name`` for
    an AVVP model).

    The class is checked when its module is imported: a subclass of :class:`AVELModel` or
    :class:`AVVPModel`, a constructor whose arguments all have defaults, and
    :attr:`Model.hyperparameters` declaring exactly its arguments besides its task's
    :attr:`Model.data_dims`, with valid defaults.

    Args:
        name: the registry name (lowercase letters, digits and ``_``).

    Raises:
        TypeError: the class breaks the contract, or ``name`` is taken.
    """

    def decorate(cls: type[Model]) -> type[Model]:
        _check_contract(name, cls)
        MODELS[name] = cls
        return cls

    return decorate


def declarations(
    names: Sequence[str] | None = None, task: str = "avel"
) -> dict[str, dict[str, Hyper]]:
    """The registered models' hyperparameters: ``{model name: {key: Hyper}}``.

    Args:
        names: the models to list (default ``None``: every model of ``task``, sorted).
        task: the task whose models are listed when ``names`` is ``None`` (default
            ``"avel"``).
    """
    chosen = MODELS.of_task(task) if names is None else names
    return {name: {h.name: h for h in MODELS[name].hyperparameters} for name in chosen}
