"""The one declarative schema of ``params.yaml`` (docs/design.md §5), in pydantic v2.

Every section and key has a type, a range or a set of choices, a unit where it has one, and a
one-line description; cross-key rules (milestones increasing, floors in (0, 1], the slice
window of seed 004 eq 14) are validators of the section they belong to. A stage validates the
sections it reads before doing any work (:func:`pipeline.config.params.load_params`); a bad value
ends the stage with one line per mistake that names the key, the value found and what is
allowed. The model section is generated from the hyperparameters that the registered models
declare (:class:`pipeline.models.Hyper`); whether the chosen model accepts the combination
is checked against its constructor by :func:`pipeline.models.check_model`.

``python -m pipeline.config.schema`` prints the parameter reference (``docs/parameters.md``) from
this file; ``python -m pipeline.config.schema --write`` rewrites it there and adds every
registered model's keys that ``params.yaml``'s ``model`` section lacks, with the
constructor's default, so that ``dvc exp run -S model.<key>=...`` finds them (tests keep
both up to date).
"""

import difflib
import re
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from pipeline.config.model_index import model_index
from pipeline.errors import PipelineError

T = 10  # segments per AVE video (docs/design.md §1)
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _strict_number(value: Any) -> Any:
    """Numbers stay numbers; a YAML 1.1 exponent string such as ``1e-4`` becomes a float.

    PyYAML (and ``dvc exp run -S``) reads ``1e-4`` without a dot as a string; accepting it
    here saves a confusing error. Booleans are not numbers.
    """
    if isinstance(value, str) and _FLOAT.match(value.strip()):
        return float(value)
    if isinstance(value, bool):
        raise ValueError("expected a number")
    return value


Number = Annotated[float, BeforeValidator(_strict_number), Field(allow_inf_nan=False)]


def _field(description: str, unit: str = "", **limits: Any) -> Any:
    """A required key: its description, unit and limits (``ge``, ``gt``, ``le``, ``lt``)."""
    return Field(description=description, json_schema_extra={"unit": unit}, **limits)


def _optional(description: str, unit: str = "", **limits: Any) -> Any:
    """A key that may be left out (the reader's own default applies)."""
    return Field(None, description=description, json_schema_extra={"unit": unit}, **limits)


def _device(value: str) -> str:
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise ValueError("expected auto, cpu, cuda or cuda:N")
    return value


Device = Annotated[str, AfterValidator(_device)]


Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class RuleError(ValueError):
    """A cross-key rule broken; ``key`` is the key the message is about, within its section
    (``""``: the section as a whole)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class Section(BaseModel):
    """A section of ``params.yaml``: strict types, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True)


class SourceOverride(Section):
    """One file of ``data.sources``: where to fetch it and how to check it."""

    url: str | None = _optional("HTTPS URL of the file (replaces the release's location)")
    drive_id: str | None = _optional("Google Drive id of the file")
    sha256: Sha256 | None = _optional("expected sha256, 64 lowercase hex digits")
    size: int | None = _optional("expected size", "bytes", ge=1)


class Synthetic(Section):
    """``data.synthetic``: the generator's arguments; a key left out takes its default."""

    seed: int = _optional("seed of the generator", ge=0)
    n_train: int = _optional("training videos", "videos", ge=1)
    n_val: int = _optional("validation videos (checkpoint choice needs them)", "videos", ge=1)
    n_test: int = _optional("test videos (evaluation needs them)", "videos", ge=1)
    n_background: int = _optional("background-only videos of the weak setting", "videos", ge=0)
    audio_dim: int = _optional("audio feature size", "features", ge=1)
    visual_dim: int = _optional("visual channels", "channels", ge=1)
    map_size: int = _optional("side of the visual map", "cells", ge=1)
    full_fraction: Number = _optional(
        "share of videos whose event spans all 10 segments", ge=0, le=1
    )
    audio_strength: Number = _optional("amplitude of an audible source", ge=0)
    visual_strength: Number = _optional("amplitude of a visible source", ge=0)
    audio_noise: Number = _optional("standard deviation of the audio ambience", ge=0)
    visual_noise: Number = _optional("standard deviation of the visual texture", ge=0)
    audio_confusion: Number = _optional(
        "largest weight of a video's confuser class in its sound", ge=0, le=1
    )
    visual_confusion: Number = _optional(
        "largest weight of a video's confuser class in its look", ge=0, le=1
    )
    shared_confusion: Number = _optional(
        "probability that both modalities share the confuser", ge=0, le=1
    )
    clutter: int = _optional("silent objects of other classes in each visual map", "objects", ge=0)
    clutter_strength: Number = _optional("peak amplitude of a clutter object", ge=0)
    border_strength: Number = _optional(
        "onset/offset signature amplitude relative to the source", ge=0
    )
    source_sigma: Number = _optional("width of the sound source's footprint", "cells", gt=0)


class WeightFile(Section):
    """A network's weights: a local state-dict file and, optionally, its checksum."""

    path: str | None = _field("state-dict file; null: the public release (vgg19, vggish only)")
    sha256: Sha256 | None = _field("expected sha256 of the file (64 lowercase hex digits)")


class Weights(Section):
    """``data.weights``: the feature networks of the ``videos`` source and of prediction."""

    vgg19: WeightFile = _field("features ave: VGG-19 (ImageNet), pool5 maps")
    vggish: WeightFile = _field("features ave: VGGish (AudioSet) embedding")
    mc3_18: WeightFile = _field("features seed003: video network of seed 003 Table 1b")
    seed003_audio: WeightFile = _field("features seed003: audio network of seed 003 Table 1a")


class Data(Section):
    """``data``: where ``data/ave/`` comes from (read by the download stage)."""

    source: Literal["synthetic", "local", "ave", "videos"] = _field("where the store comes from")
    local_dir: str | None = _field("source local: a directory with the official AVE files")
    download_dir: str | None = _field(
        "ave: downloads (resumable); videos: feature cache and weights; null: the user cache"
    )
    sources: dict[str, SourceOverride] = _field(
        "source ave: overrides of the download table: file name to url or drive_id, sha256, size"
    )
    synthetic: Synthetic = _field("source synthetic: the generator's arguments")
    right_labels: str | None = _field(
        "optional corrected labels (PSP's right_labels.h5, C-AVE), scored beside the originals"
    )
    videos_dir: str | None = _field(
        "source videos: AVE/<id>.mp4, Annotations.txt and the split files of the release"
    )
    features: Literal["ave", "seed003"] = _field(
        "source videos and predict: ave (VGG-19 + VGGish) or seed003 (seed 003 Table 1)"
    )
    on_bad_video: Literal["fail", "skip"] = _field(
        "source videos: a missing or unreadable video stops the stage, or is skipped and counted"
    )
    device: Device = _field("source videos: where the feature networks run")
    weights: Weights = _field("the feature networks' weights")

    @model_validator(mode="after")
    def _directory_given(self) -> "Data":
        for source, key in (("local", "local_dir"), ("videos", "videos_dir")):
            if self.source == source and not getattr(self, key):
                raise RuleError(key, f"must name a directory when data.source is {source}")
        return self


class Augment(Section):
    """``augment``: Replicate-and-Link (seed 001 §3.4) and SMB fusion (seed 002 Alg. 1)."""

    seed: int = _field("seed of the replica and SMB draws", ge=0)
    replicas_per_video: int = _field("replicas drawn per training video", "videos", ge=1)
    smb_per_class: int = _field("SMB-fused videos per class added to SEL training", "videos", ge=0)
    replicate: bool = _field("train_sel: one replica per original in each mini-batch")
    link: bool = _field("train_sel: link the graphs of original and replica")


def _check_window(window: int, stride: int) -> None:
    """Seed 004's rules for the slice window ``N`` and stride ``s`` (eqs 13-14)."""
    if 2 * window >= T + 1:
        raise RuleError(
            "window", f"expected window < (T + 1) / 2 = {(T + 1) / 2} (eq 14), found {window}"
        )
    if (T - window) % stride:
        raise RuleError(
            "stride",
            f"expected a divisor of T - window = {T - window} (seed 004 eq 13), found {stride}",
        )


class Refine(Section):
    """``refine``: seed 004's weak chain train_wsel -> refine -> retrain_wsel."""

    auxiliary: bool = _field("train_wsel adds the auxiliary objective (eqs 15-18)")
    window: int = _field("N: slice length; N < (T + 1) / 2 (eq 14)", "segments", ge=1)
    stride: int = _field("s: slice stride; must divide T - N", "segments", ge=1)
    tau: Number = _field("detection threshold of eq 11", ge=0, le=1)
    labels: Literal["refined", "dummy", "pseudo"] = _field(
        "refined (+LR), dummy (+LR_dummy) or pseudo (+PL) labels for Step 3"
    )
    retrain_epochs: int = _field("retrain_wsel epochs (seed 004: 100)", "epochs", ge=1)

    @model_validator(mode="after")
    def _window_fits(self) -> "Refine":
        _check_window(self.window, self.stride)
        return self


class Train(Section):
    """``train``: optimisation of every training stage."""

    seed: int = _field("seed of python, numpy and torch", ge=0)
    device: Device = _field("auto (CUDA when present), cpu, cuda or cuda:N")
    epochs: int = _field("training epochs", "epochs", ge=1)
    batch_size: int = _field("videos per mini-batch", "videos", ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = _field("the optimizer")
    lr: Number = _field("base learning rate", gt=0)
    weight_decay: Number = _field("L2 penalty", ge=0)
    scheduler: Literal["constant", "step", "multistep", "cosine", "cosine_restarts"] = _field(
        "per-epoch learning-rate schedule"
    )
    step_size: int = _field("step: epochs between decays; cosine_restarts: period", "epochs", ge=1)
    gamma: Number = _field("step, multistep: decay factor", gt=0, le=1)
    milestones: list[Annotated[int, Field(ge=1)]] = _field(
        "cosine_restarts: epoch where each floor ends; multistep: decay epochs; increasing",
        "epochs",
    )
    floors: list[Annotated[Number, Field(gt=0, le=1)]] = _field(
        "cosine_restarts: learning-rate factor each phase falls to, in (0, 1]"
    )
    background_videos: bool = _field("wsel: add the background-only videos to training")
    precision: Literal["fp32", "bf16", "fp16"] = _field(
        "autocast of training, validation and refine (fp16 adds a gradient scaler)"
    )
    compile: bool = _field("run the model through torch.compile")
    workers: int = _field("DataLoader processes reading 7x7 maps from file", "processes", ge=0)
    resume_every: int = _field("epochs between resume states (.resume/)", "epochs", ge=1)
    deterministic_cpu: bool = _field(
        "pin the CPU's kernels and one thread before torch loads: the same bytes under any "
        "outer environment on one machine (about 2x slower)"
    )

    @model_validator(mode="after")
    def _schedule(self) -> "Train":
        steps = zip(self.milestones, self.milestones[1:], strict=False)
        if any(later <= earlier for earlier, later in steps):
            raise RuleError("milestones", f"expected increasing epochs, found {self.milestones}")
        if self.scheduler == "multistep" and not self.milestones:
            raise RuleError("milestones", "multistep needs at least one decay epoch, found []")
        if self.scheduler == "cosine_restarts" and (
            not self.milestones or len(self.floors) != len(self.milestones)
        ):
            raise RuleError(
                "floors",
                f"cosine_restarts needs one floor per milestone, found {len(self.floors)} "
                f"floors for {len(self.milestones)} milestones",
            )
        return self


class Evaluate(Section):
    """``evaluate``: the test metrics of the evaluate stages."""

    device: Device = _field("auto (CUDA when present), cpu, cuda or cuda:N")
    batch_size: int = _field("videos per batch", "videos", ge=1)
    split: Literal["val", "test"] = _field("the split scored")
    timeline_videos: int = _field("videos drawn in the timeline plot", "videos", ge=0)
    b2ilc: bool = _field("also score predictions after B2IL correction (seed 002)")
    bootstrap: int = _field("resamples of the test videos for the 95 % CIs", "resamples", ge=10)
    seed: int = _field("seed of the bootstrap resampling", ge=0)
    precision: Literal["fp32", "bf16", "fp16"] = _field("autocast of the test predictions")


class Predict(Section):
    """``predict``: ``python -m stages.predict VIDEO`` (a command, not a DVC stage)."""

    checkpoint: str = _field("the trained model (data.features must match its training data)")
    output_dir: str = _field("where <video>.json and <video>_timeline.png are written")
    b2ilc: bool = _field("also give the predictions after B2IL correction (seed 002)")
    device: Device = _field("auto (CUDA when present), cpu, cuda or cuda:N")


class AVVPSynthetic(Section):
    """``avvp.synthetic``: arguments of :func:`pipeline.avvp.synthetic.generate_llp`."""

    seed: int = _optional("seed of the generator", ge=0)
    n_train: int = _optional("training videos (weak labels)", "videos", ge=2)
    n_val: int = _optional("validation videos (checkpoint choice)", "videos", ge=1)
    n_test: int = _optional("test videos (evaluation)", "videos", ge=1)
    audio_dim: int = _optional("audio feature size (release: 128)", "features", ge=1)
    frame_dim: int = _optional("2D frame feature size (release: 2048)", "features", ge=1)
    snippet_dim: int = _optional("3D snippet feature size (release: 512)", "features", ge=1)
    audio_strength: Number = _optional("amplitude of an audible class", ge=0)
    visual_strength: Number = _optional("amplitude of a visible class", ge=0)
    noise: Number = _optional("standard deviation of the ambient noise", ge=0)


class AVVPTrain(Section):
    """``avvp.train``: HAN's optimisation (seed and device: ``train.seed``, ``train.device``)."""

    epochs: int = _field("training epochs (Step 1 and Step 3)", "epochs", ge=1)
    batch_size: int = _field("videos per mini-batch", "videos", ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = _field("the optimizer")
    lr: Number = _field("base learning rate", gt=0)
    weight_decay: Number = _field("L2 penalty", ge=0)
    step_size: int = _field("epochs between learning-rate decays", "epochs", ge=1)
    gamma: Number = _field("learning-rate decay factor", gt=0, le=1)
    audio_smoothing: Number = _field("label smoothing of the audio target", ge=0, lt=1)
    visual_smoothing: Number = _field("label smoothing of the visual target", ge=0, lt=1)


class AVVPRefine(Section):
    """``avvp.refine``: seed 004's refinement on HAN (HAN + LR, App. A.1)."""

    auxiliary: bool = _field("Step 1 adds the auxiliary objective (eqs 15-18)")
    auxiliary_weight: Number = _field("weight of the auxiliary loss", ge=0)
    window: int = _field("N: slice length; N < (T + 1) / 2 (eq 14)", "segments", ge=1)
    stride: int = _field("s: slice stride; must divide T - N", "segments", ge=1)
    tau: Number = _field(
        "detection threshold of eq 11 (on HAN's modality probabilities)", ge=0, le=1
    )

    @model_validator(mode="after")
    def _window_fits(self) -> "AVVPRefine":
        _check_window(self.window, self.stride)
        return self


class AVVPEvaluate(Section):
    """``avvp.evaluate``: the test metrics of the AVVP evaluate stages."""

    batch_size: int = _field("videos per batch", "videos", ge=1)
    bootstrap: int = _field("resamples of the test videos for the 95 % CIs", "resamples", ge=10)
    seed: int = _field("seed of the bootstrap resampling", ge=0)


class AVVP(Section):
    """``avvp``: the AVVP task on LLP (seed 004 App. A.1, Table 6): HAN and HAN + LR."""

    source: Literal["synthetic", "local", "llp"] = _field("where data/llp comes from")
    local_dir: str | None = _field("source local: the release's CSVs with the feature folders")
    download_dir: str | None = _field(
        "source llp: downloads and unpacked features; null: the user cache"
    )
    sources: dict[str, SourceOverride] = _field(
        "source llp: overrides of the download table: file name to url or drive_id, sha256, size"
    )
    synthetic: AVVPSynthetic = _field("source synthetic: the generator's arguments")
    model: Section = _field("the AVVP model: its name and hyperparameters")  # generated
    train: AVVPTrain = _field("HAN's optimisation")
    refine: AVVPRefine = _field("the refinement of HAN + LR")
    evaluate: AVVPEvaluate = _field("the test metrics")

    @model_validator(mode="after")
    def _directory_given(self) -> "AVVP":
        if self.source == "local" and not self.local_dir:
            raise RuleError("local_dir", "must name a directory when avvp.source is local")
        return self


# ---------------------------------------------------------------------------------------
# The model section, generated from the hyperparameters the registered models declare.


_CHECKED: set[tuple[str, str]] = set()  # (name, keys) combinations the constructor accepted


class ModelSection(Section):
    """``model`` (AVEL) or ``avvp.model`` (AVVP): one flat section per task; each model
    reads its own keys (docs/design.md §5).

    Generated by :func:`model_section`: ``name`` is a registered model, and each key has
    the type and the loosest bounds of the models that declare it. The chosen model's
    own declaration of each key it reads is checked here too; keys it does not read are
    left for other models (the training stages report them as ignored).
    """

    declared: ClassVar[dict[str, dict[str, Any]]] = {}
    check: ClassVar[Any] = None  # check(name, hyperparameters): the constructor's own checks

    def hyperparameters(self) -> dict[str, Any]:
        """The keys set in the section besides ``name``, in the schema's order."""
        chosen = self.model_fields_set - {"name"}
        return {key: getattr(self, key) for key in type(self).model_fields if key in chosen}

    @model_validator(mode="after")
    def _valid_for_the_chosen_model(self) -> "ModelSection":
        own = self.declared[self.name]
        for key in sorted(self.model_fields_set & set(own)):
            value = getattr(self, key)
            problem = own[key].problem(value)
            if problem is not None:
                raise RuleError(key, f"{problem} for model {self.name}, found {value!r}")
        combination = (self.name, repr(sorted(self.hyperparameters().items())))
        if self.check is not None and combination not in _CHECKED:
            try:
                self.check(self.name, self.hyperparameters())
            except PipelineError as err:
                raise RuleError("", str(err)) from None
            _CHECKED.add(combination)  # ablations.yaml checks the same rows many times
        return self


def _annotation(hyper: Any) -> Any:
    """The pydantic type of a key declared by ``hyper`` (a :class:`~pipeline.models.Hyper`)."""
    if hyper.kind is list:
        return list if hyper.choices is None else list[Literal[hyper.choices]]
    if hyper.choices is not None:
        return Literal[hyper.choices]
    return Number if hyper.kind is float else hyper.kind


def _loosest(hypers: list[Any], strict: str, inclusive: str, pick: Any) -> dict[str, float]:
    """The loosest of the bounds on one side, e.g. ``{"ge": 0}``; none if one is unbounded."""
    bounds = []
    for hyper in hypers:
        for key in (inclusive, strict):
            if getattr(hyper, key) is not None:
                bounds.append((getattr(hyper, key), key == inclusive))
                break
        else:
            return {}
    value = pick(bound for bound, _ in bounds)
    inclusive_at_value = any(incl for bound, incl in bounds if bound == value)
    return {inclusive if inclusive_at_value else strict: value}


def _merged_field(key: str, readers: dict[str, Any]) -> tuple[Any, Any]:
    """The flat field of ``key`` from its declarations ``{reader label: Hyper}``."""
    hypers = list(readers.values())
    kinds = {hyper.kind for hyper in hypers}
    if len(kinds) != 1:
        raise TypeError(f"model.{key}: declared with different kinds {kinds} by {list(readers)}")
    choices = None
    if all(hyper.choices is not None for hyper in hypers):
        choices = tuple(dict.fromkeys(c for hyper in hypers for c in hyper.choices))
    annotation = _annotation(replace(hypers[0], choices=choices))
    limits = {**_loosest(hypers, "gt", "ge", min), **_loosest(hypers, "lt", "le", max)}
    differ = len({(hyper.choices, tuple(hyper.bounds.items())) for hyper in hypers}) > 1
    texts: dict[str, list[str]] = {}
    for label, hyper in readers.items():
        text = f"{hyper.description} ({hyper.expected()})" if differ else hyper.description
        texts.setdefault(text, []).append(label)
    description = "; ".join(f"{', '.join(labels)}: {text}" for text, labels in texts.items())
    unit = "/".join(dict.fromkeys(hyper.unit for hyper in hypers if hyper.unit))
    return annotation, _optional(description, unit, **limits)


def model_section(
    declared: dict[str, dict[str, Any]],
    families: dict[str, str],
    check: Any = None,
    task: str = "avel",
) -> type:
    """A task's model section's schema class from its models' declarations.

    Args:
        declared: ``{model name: {key: Hyper}}`` (:func:`pipeline.models.declarations`).
        families: ``{model name: label}``: how descriptions name the models reading a key.
        check: ``check(name, hyperparameters)`` raising :class:`PipelineError` for a
            combination the chosen model's constructor rejects (default ``None``: none).
        task: the task of the models (default ``"avel"``: ``model``; ``"avvp"``:
            ``avvp.model``).
    """
    readers: dict[str, dict[str, Any]] = {}
    for name, hypers in declared.items():
        for key, hyper in hypers.items():
            readers.setdefault(key, {})[families[name]] = hyper
    fields = {key: _merged_field(key, by_label) for key, by_label in readers.items()}
    name = Literal[tuple(declared)]
    described = _field(
        f"the {task.upper()} model: a name registered in pipeline/models (@register)"
    )
    section = create_model(
        "AVVPModel" if task == "avvp" else "Model",
        __base__=ModelSection,
        name=(name, described),
        **fields,
    )
    section.declared, section.check = declared, staticmethod(check) if check else None
    return section


def registered_model_section(task: str = "avel") -> type:
    """:func:`model_section` of the models of ``task`` registered in :mod:`pipeline.models`.

    Imported here, when the section is checked, so that the stages that do not read a
    model section neither import the models (and torch) nor depend on their files.

    Args:
        task: ``avel`` (the ``model`` section, default) or ``avvp`` (``avvp.model``).
    """
    from pipeline.models import MODELS, check_model, declarations  # noqa: PLC0415 (docstring)

    names = MODELS.of_task(task)
    families = {name: MODELS[name].family or name for name in names}
    return model_section(declarations(names), families, check_model, task)


def avvp_section(with_model: bool = True) -> type:
    """The ``avvp`` section's schema class, with ``avvp.model`` generated from the AVVP
    models' declarations (:func:`registered_model_section`).

    Args:
        with_model: check ``avvp.model`` (default ``True``); ``False`` leaves it as given,
            for the stages that build no model (``avvp_synthesize``, ``avvp_download``):
            the check imports every model module, three seconds at each stage's start.
    """
    model = registered_model_section("avvp") if with_model else dict[str, Any]
    return create_model(
        "AVVP", __base__=AVVP, model=(model, _field("the AVVP model: its name and hyperparameters"))
    )


SECTIONS: dict[str, type[Section] | None] = {
    "data": Data,
    "model": None,  # generated: section_class("model")
    "augment": Augment,
    "refine": Refine,
    "train": Train,
    "evaluate": Evaluate,
    "predict": Predict,
    "avvp": None,  # generated: section_class("avvp"), its model section from the registry
}


def section_class(name: str, with_model: bool = True) -> type[Section]:
    """The schema class of section ``name`` (the model sections generated now; ``avvp``'s
    without checking ``avvp.model`` where ``with_model`` is ``False``: :func:`avvp_section`)."""
    if name == "avvp":
        return avvp_section(with_model)
    return registered_model_section() if name == "model" else SECTIONS[name]


def _key(loc: tuple, error: dict) -> str:
    parts = [str(part) for part in loc if not isinstance(part, int)]
    indices = [part for part in loc if isinstance(part, int)]
    rule = (error.get("ctx") or {}).get("error")
    if isinstance(rule, RuleError) and rule.key:
        parts.append(rule.key)
    key = ".".join(parts)
    return key + "".join(f"[{i}]" for i in indices)


def _owner_class(loc: tuple) -> type[Section]:
    """The schema class of the mapping that holds the key at ``loc``."""
    cls = section_class(loc[0])
    for part in loc[1:-1]:
        annotation = cls.model_fields[part].annotation if part in cls.model_fields else None
        if isinstance(annotation, type) and issubclass(annotation, Section):
            cls = annotation
        elif get_origin(annotation) is dict:
            cls = SourceOverride
    return cls


def did_you_mean(found: Any, valid: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``valid`` to ``found`` (difflib), or ``""``."""
    if not isinstance(found, str):
        return ""
    close = difflib.get_close_matches(found, list(valid), n=2, cutoff=0.6)
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)" if close else ""


def _message(error: dict) -> str:
    """One line for one pydantic error: key, what is allowed, what was found (and the
    closest valid key or choice to a misspelled one)."""
    key = _key(error["loc"], error)
    if error["type"] == "extra_forbidden":
        owner = ".".join(str(p) for p in error["loc"][:-1])
        fields = _owner_class(error["loc"]).model_fields
        hint = did_you_mean(str(error["loc"][-1]), fields)
        return f"{key}: unknown key{hint}; valid keys of '{owner}': {', '.join(fields)}"
    if error["type"] == "missing":
        return f"{key}: missing key"
    rule = (error.get("ctx") or {}).get("error")
    text = str(rule) if rule is not None else error["msg"]
    if not isinstance(rule, RuleError):
        found = error.get("input")
        text = f"{text}, found {found!r}"
        if error["type"] == "literal_error":
            choices = re.findall(r"'([^']*)'", (error.get("ctx") or {}).get("expected", ""))
            text += did_you_mean(found, choices)
    return f"{key}: {text}"


def registered_names() -> list[str]:
    """The model names registered in ``pipeline/models`` (read from the files' ``@register``
    decorators, without importing torch: :func:`pipeline.config.model_index.model_index`),
    and any registered at run time."""
    names = set(model_index())
    if "pipeline.models" in sys.modules:  # models registered elsewhere (a test file)
        names |= set(sys.modules["pipeline.models"].MODELS)
    return sorted(names)


def _model_name_line(params: dict[str, Any]) -> str | None:
    """The error line of an unknown ``model.name``, checked without the registry.

    Every stage checks it, whatever sections it reads, so that the first stage of a
    ``dvc repro`` stops a misspelled name before DVC deletes any stage's outputs."""
    model = params.get("model")
    name = model.get("name") if isinstance(model, dict) else None
    if name is None or isinstance(model, Section):
        return None
    names = registered_names()
    if name in names:
        return None
    return (
        f"model.name: unknown model {name!r}{did_you_mean(name, names)}; "
        f"registered: {', '.join(names)}"
    )


def validate_params(
    params: dict[str, Any],
    sections: tuple[str, ...],
    source: str = "params.yaml",
    typed: bool = False,
    with_model: bool = True,
) -> dict[str, Any]:
    """Check ``sections`` of ``params`` against the schema.

    Args:
        params: the whole parameter mapping (as read from YAML, or already checked).
        sections: the sections the caller reads; each must be present and valid.
        source: the file named in messages (default: ``params.yaml``).
        typed: give each checked section as its schema object (:class:`Train`, ...)
            instead of a mapping (default ``False``).
        with_model: check ``avvp.model`` with the ``avvp`` section (default ``True``;
            :func:`avvp_section`).

    Returns:
        ``params`` with each checked section as validated (numbers from exponent strings
        converted; keys left out stay left out): a mapping, or with ``typed`` the object.

    Raises:
        PipelineError: an unknown section, or any bad key of the checked sections; the
            message has one line per mistake.
    """
    unknown = sorted(set(params) - set(SECTIONS))
    if unknown:
        hints = "".join(did_you_mean(name, SECTIONS) for name in unknown)
        raise PipelineError(
            f"{source}: unknown section(s) {', '.join(unknown)}{hints}; "
            f"valid: {', '.join(SECTIONS)}"
        )
    checked = dict(params)
    lines = []
    if "model" not in sections and (line := _model_name_line(params)):
        lines.append(line)
    for name in sections:
        if name not in params:
            lines.append(f"{name}: missing section")
            continue
        given = params[name]
        try:
            value = section_class(name, with_model).model_validate(
                given.model_dump(exclude_unset=True) if isinstance(given, Section) else given
            )
        except ValidationError as err:
            for error in err.errors():
                error["loc"] = (name, *error["loc"])
                lines.append(_message(error))
            continue
        checked[name] = value if typed else value.model_dump(exclude_unset=True)
    if lines:
        raise PipelineError("\n".join(f"{source}: {line}" for line in lines))
    return checked


# ---------------------------------------------------------------------------------------
# The parameter reference (docs/parameters.md), generated from the schema.

REFERENCE = "docs/parameters.md"  # where the generated parameter reference lives
README_START = "<!-- parameters: generated by `python -m pipeline.config.schema --write` -->"
README_END = "<!-- end of parameters -->"


def _type_text(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin is Annotated:
        return _type_text(args[0])
    if origin in (list, dict):
        return f"{origin.__name__} of {_type_text(args[-1])}"
    if origin is not None:  # a union
        return " or ".join(_type_text(a) for a in args if a is not type(None))
    return getattr(annotation, "__name__", str(annotation)).replace("float", "number")


def _limits_text(field: Any) -> str:
    symbols = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    parts = []
    for meta in field.metadata:
        for attr, symbol in symbols.items():
            if isinstance(meta, getattr(annotated_types, attr.capitalize())):
                parts.append(f"{symbol} {getattr(meta, attr)}")
    return ", ".join(parts)


def _rows(prefix: str, cls: type[Section]) -> list[str]:
    rows = []
    for key, field in cls.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, Section):
            rows += _rows(f"{prefix}.{key}", annotation)
            continue
        unit = (field.json_schema_extra or {}).get("unit", "")
        optional = "" if field.is_required() else " (optional)"
        rows.append(
            f"| `{prefix}.{key}` | {_type_text(annotation)}{optional} | {_limits_text(field)} "
            f"| {unit} | {field.description} |"
        )
    return rows


def markdown_reference() -> str:
    """The parameter reference: one table row per key, from the schema."""
    lines = ["| key | type | range | unit | description |", "|---|---|---|---|---|"]
    for name in SECTIONS:
        lines += _rows(name, section_class(name))
    return "\n".join(lines) + "\n"


def readme_block(text: str, markers: tuple[str, str] = (README_START, README_END)) -> str:
    """The generated part of a README's text (between the two ``markers``; default: the
    parameter reference's)."""
    start, end = text.index(markers[0]) + len(markers[0]), text.index(markers[1])
    return text[start:end].strip("\n") + "\n"


def write_readme(
    path: Path, block: str | None = None, markers: tuple[str, str] = (README_START, README_END)
) -> None:
    """Replace the generated part of ``path`` between ``markers`` by ``block`` (default:
    the current parameter reference)."""
    text = path.read_text()
    start, end = text.index(markers[0]) + len(markers[0]), text.index(markers[1])
    block = markdown_reference() if block is None else block
    path.write_text(text[:start] + "\n" + block + text[end:])


# ---------------------------------------------------------------------------------------
# params.yaml's model sections: every registered model's keys, so that `dvc exp run -S
# model.<key>=value` (AVEL) and `-S avvp.model.<key>=value` (AVVP) find them (DVC refuses
# a key that is not in the file).

PARAMS = "params.yaml"
_COMMENT_COLUMN = 27  # where params.yaml's end-of-line comments start


MODEL_TASKS = ("avel", "avvp")  # each task's model section: ``model``, ``avvp.model``


def missing_model_keys(params_text: str, task: str = "avel") -> dict[str, tuple[Any, str]]:
    """The keys that the registered models of ``task`` declare and its model section in
    ``params_text`` lacks.

    Args:
        params_text: a ``params.yaml`` text.
        task: ``avel`` (``model``, default) or ``avvp`` (``avvp.model``).

    Returns:
        ``{key: (default, comment)}`` in the registry's order: the default of the first
        model declaring the key (its constructor's), and who reads it with what.
    """
    from pipeline.config.signature import keyword_defaults  # noqa: PLC0415
    from pipeline.models import MODELS, declarations  # noqa: PLC0415 (see above)

    present = yaml_model_keys(params_text, task)
    missing: dict[str, tuple[Any, str]] = {}
    for name, hypers in declarations(task=task).items():
        defaults = keyword_defaults(MODELS[name])
        for key, hyper in hypers.items():
            if key in present:
                continue
            label = MODELS[name].family or name
            if key not in missing:
                missing[key] = (defaults[key], f"{label}: {hyper.description}")
            else:
                default, comment = missing[key]
                other = "" if defaults[key] == default else f" (default {defaults[key]!r})"
                missing[key] = (default, f"{comment}; {label} too{other}")
    return missing


def yaml_model_keys(params_text: str, task: str = "avel") -> set[str]:
    """The keys of ``task``'s model section (``model`` or ``avvp.model``) of a
    ``params.yaml`` text."""
    import yaml  # noqa: PLC0415 (only the writer needs it)

    params = yaml.safe_load(params_text) or {}
    if task == "avvp":
        params = params.get("avvp") or {}
    return set(params.get("model") or {})


def _section_lines(lines: list[str], task: str) -> tuple[int, int, str]:
    """``(start, end, indent)``: the lines of ``task``'s model section (header excluded
    from ``start + 1`` to ``end``) and the indent of its keys."""
    outer, indent, header = 0, "  ", "model:"
    if task == "avvp":
        outer = next(i for i, line in enumerate(lines) if line.startswith("avvp:"))
        indent, header = "    ", "  model:"
    start = next(i for i in range(outer, len(lines)) if lines[i].startswith(header))
    depth = len(indent) - 2  # a line indented this much or less ends the section
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if lines[i].strip()
            and not lines[i].lstrip().startswith("#")
            and len(lines[i]) - len(lines[i].lstrip()) <= depth
        ),
        len(lines),
    )
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return start, end, indent


def _flow(value: Any) -> str:
    """``value`` in YAML flow style, as one line."""
    import yaml  # noqa: PLC0415

    return yaml.safe_dump(value, default_flow_style=True, width=4096).strip().removesuffix("\n...")


def with_model_keys(params_text: str, task: str = "avel") -> str:
    """``params_text`` with every missing key of ``task``'s registered models appended to
    its model section (``model``, or ``avvp.model`` for ``avvp``).

    Each new line is ``  key: default  # who reads it: description``; the rest of the text
    (comments, order, formatting) is kept byte for byte.
    """
    missing = missing_model_keys(params_text, task)
    if not missing:
        return params_text
    lines = params_text.splitlines(keepends=True)
    _, end, indent = _section_lines(lines, task)
    added = []
    for key, (default, comment) in missing.items():
        entry = f"{indent}{key}: {_flow(default)}"
        added.append(f"{entry.ljust(_COMMENT_COLUMN - 1)} # {comment}\n")
    return "".join(lines[:end] + added + lines[end:])


def write_params(path: Path) -> list[str]:
    """Add the missing keys of both tasks' model sections to the file ``path``; returns
    the keys added (``model.<key>``, ``avvp.model.<key>``)."""
    text, added = path.read_text(), []
    for task in MODEL_TASKS:
        prefix = "avvp.model" if task == "avvp" else "model"
        added += [f"{prefix}.{key}" for key in missing_model_keys(text, task)]
        text = with_model_keys(text, task)
    if added:
        path.write_text(text)
    return added


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_readme(Path(REFERENCE))
        keys = write_params(Path(PARAMS))
        print(f"{REFERENCE}: written")
        print(f"{PARAMS}: " + (f"added {', '.join(keys)}" if keys else "unchanged"))
    else:
        print(markdown_reference(), end="")
