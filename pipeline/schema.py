"""The one declarative schema of ``params.yaml`` (DESIGN.md §5), in pydantic v2.

Every section and key has a type, a range or a set of choices, a unit where it has one, and a
one-line description; cross-key rules (milestones increasing, floors in (0, 1], the slice
window of seed 004 eq 14) are validators of the section they belong to. A stage validates the
sections it reads before doing any work (:func:`pipeline.params.load_params`); a bad value
ends the stage with one line per mistake that names the key, the value found and what is
allowed. The model section types every hyperparameter here; whether the chosen model accepts
the combination is checked against its constructor by :func:`pipeline.models.check_model`.

``python -m pipeline.schema`` prints the parameter reference of the README from this file;
``python -m pipeline.schema --write`` rewrites it there (a test keeps the two equal).
"""

import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import PipelineError

T = 10  # segments per AVE video (DESIGN.md §1)
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
    """A cross-key rule broken; ``key`` is the key the message is about, within its section."""

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


class Model(Section):
    """``model``: one flat section; each model reads its own keys (DESIGN.md §5)."""

    name: str = _field("registry name of the model (pipeline.models.MODELS)")
    hidden: int = _optional("dpnet, edrnet: feature size d; ave: LSTM hidden size h", ge=1)
    blocks: int = _optional("dpnet family: number of blocks B (seed 001 supplement)", ge=1)
    kernel: int = _optional("dpnet family: TCN kernel k; edrnet: temporal kernel k", ge=2)
    order: Literal["graph_first", "graph_second"] = _optional("dpnet: order in a block")
    dropout: Number = _optional("dpnet: RGCT dropout; ave, edrnet: dropout", ge=0, lt=1)
    attention_dim: int = _optional("ave: d of seed 004 eq 1", ge=1)
    classifier_hidden: int = _optional("ave: h' of seed 004 eq 5", ge=1)
    layers: int = _optional("edrnet: temporal convolutions L of the decomposition", ge=1)
    branches: list[Literal["a", "v", "av"]] = _optional(
        "edrnet: decomposition branches kept (seed 002 Table 4)"
    )
    visual_kernel: int = _optional("edrnet: visual 2D convolution size", ge=1)
    seg_weight: Number = _optional("edrnet: lambda_1 of the segment loss", ge=0)
    lss_weight: Number = _optional("edrnet: lambda_2 of the Land-Shore-Sea loss", ge=0)
    lss_margin: Number = _optional("edrnet: triplet margin alpha (seed 002 eq 10)", ge=0)

    @field_validator("branches")
    @classmethod
    def _distinct_branches(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value) or not {"a", "v"} & set(value):
            raise ValueError("expected distinct branches including 'a' or 'v'")
        return value


class Augment(Section):
    """``augment``: Replicate-and-Link (seed 001 §3.4) and SMB fusion (seed 002 Alg. 1)."""

    seed: int = _field("seed of the replica and SMB draws", ge=0)
    replicas_per_video: int = _field("replicas drawn per training video", "videos", ge=1)
    smb_per_class: int = _field("SMB-fused videos per class added to SEL training", "videos", ge=0)
    replicate: bool = _field("train@sel: one replica per original in each mini-batch")
    link: bool = _field("train@sel: link the graphs of original and replica")


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
    """``refine``: seed 004's weak chain train@wsel -> refine -> retrain@wsel."""

    auxiliary: bool = _field("train@wsel adds the auxiliary objective (eqs 15-18)")
    window: int = _field("N: slice length; N < (T + 1) / 2 (eq 14)", "segments", ge=1)
    stride: int = _field("s: slice stride; must divide T - N", "segments", ge=1)
    tau: Number = _field("detection threshold of eq 11", ge=0, le=1)
    labels: Literal["refined", "dummy", "pseudo"] = _field(
        "refined (+LR), dummy (+LR_dummy) or pseudo (+PL) labels for Step 3"
    )
    retrain_epochs: int = _field("retrain@wsel epochs (seed 004: 100)", "epochs", ge=1)

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
    scheduler: Literal["constant", "step", "cosine", "cosine_restarts"] = _field(
        "per-epoch learning-rate schedule"
    )
    step_size: int = _field("step: epochs between decays; cosine_restarts: period", "epochs", ge=1)
    gamma: Number = _field("step: decay factor", gt=0, le=1)
    milestones: list[Annotated[int, Field(ge=1)]] = _field(
        "cosine_restarts: epoch where each floor ends, increasing", "epochs"
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

    @model_validator(mode="after")
    def _schedule(self) -> "Train":
        steps = zip(self.milestones, self.milestones[1:], strict=False)
        if any(later <= earlier for earlier, later in steps):
            raise RuleError("milestones", f"expected increasing epochs, found {self.milestones}")
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


class AVVPModel(Section):
    """``avvp.model``: HAN's hyperparameters (:class:`pipeline.models.han.HAN`)."""

    hidden: int = _field("feature size d of projections and attention", "features", ge=1)
    heads: int = _field("attention heads (divide hidden)", ge=1)
    feedforward: int = _field("hidden size of the feed-forward block", "features", ge=1)
    dropout: Number = _field("dropout of the HAN layers", ge=0, lt=1)
    layers: int = _field("stacked HAN layers", ge=1)
    share_layers: bool = _field("one layer's weights for the audio and the visual query")

    @model_validator(mode="after")
    def _heads_divide(self) -> "AVVPModel":
        if self.hidden % self.heads:
            raise RuleError(
                "heads", f"expected a divisor of hidden {self.hidden}, found {self.heads}"
            )
        return self


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
    model: AVVPModel = _field("HAN's hyperparameters")
    train: AVVPTrain = _field("HAN's optimisation")
    refine: AVVPRefine = _field("the refinement of HAN + LR")
    evaluate: AVVPEvaluate = _field("the test metrics")

    @model_validator(mode="after")
    def _directory_given(self) -> "AVVP":
        if self.source == "local" and not self.local_dir:
            raise RuleError("local_dir", "must name a directory when avvp.source is local")
        return self


SECTIONS: dict[str, type[Section]] = {
    "data": Data,
    "model": Model,
    "augment": Augment,
    "refine": Refine,
    "train": Train,
    "evaluate": Evaluate,
    "predict": Predict,
    "avvp": AVVP,
}


def _key(loc: tuple, error: dict) -> str:
    parts = [str(part) for part in loc if not isinstance(part, int)]
    indices = [part for part in loc if isinstance(part, int)]
    rule = (error.get("ctx") or {}).get("error")
    if isinstance(rule, RuleError):
        parts.append(rule.key)
    key = ".".join(parts)
    return key + "".join(f"[{i}]" for i in indices)


def _owner_class(loc: tuple) -> type[Section]:
    """The schema class of the mapping that holds the key at ``loc``."""
    cls = SECTIONS[loc[0]]
    for part in loc[1:-1]:
        annotation = cls.model_fields[part].annotation if part in cls.model_fields else None
        if isinstance(annotation, type) and issubclass(annotation, Section):
            cls = annotation
        elif get_origin(annotation) is dict:
            cls = SourceOverride
    return cls


def _message(error: dict) -> str:
    """One line for one pydantic error: key, what is allowed, what was found."""
    key = _key(error["loc"], error)
    if error["type"] == "extra_forbidden":
        owner = ".".join(str(p) for p in error["loc"][:-1])
        valid = ", ".join(_owner_class(error["loc"]).model_fields)
        return f"{key}: unknown key; valid keys of '{owner}': {valid}"
    if error["type"] == "missing":
        return f"{key}: missing key"
    rule = (error.get("ctx") or {}).get("error")
    text = str(rule) if rule is not None else error["msg"]
    if not isinstance(rule, RuleError):
        found = error.get("input")
        text = f"{text}, found {found!r}"
    return f"{key}: {text}"


def validate_params(
    params: dict[str, Any], sections: tuple[str, ...], source: str = "params.yaml"
) -> dict[str, Any]:
    """Check ``sections`` of ``params`` against the schema.

    Args:
        params: the whole parameter mapping (as read from YAML).
        sections: the sections the caller reads; each must be present and valid.
        source: the file named in messages (default: ``params.yaml``).

    Returns:
        ``params`` with each checked section as validated (numbers from exponent strings
        converted; keys left out stay left out).

    Raises:
        PipelineError: an unknown section, or any bad key of the checked sections; the
            message has one line per mistake.
    """
    unknown = sorted(set(params) - set(SECTIONS))
    if unknown:
        raise PipelineError(
            f"{source}: unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}"
        )
    checked = dict(params)
    lines = []
    for name in sections:
        if name not in params:
            lines.append(f"{name}: missing section")
            continue
        try:
            value = SECTIONS[name].model_validate(params[name])
        except ValidationError as err:
            for error in err.errors():
                error["loc"] = (name, *error["loc"])
                lines.append(_message(error))
            continue
        checked[name] = value.model_dump(exclude_unset=True)
    if lines:
        raise PipelineError("\n".join(f"{source}: {line}" for line in lines))
    return checked


# ---------------------------------------------------------------------------------------
# The README's parameter reference, generated from the schema.

README_START = "<!-- parameters: generated by `python -m pipeline.schema --write` -->"
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
    for name, cls in SECTIONS.items():
        lines += _rows(name, cls)
    return "\n".join(lines) + "\n"


def readme_block(text: str) -> str:
    """The generated part of a README's text (between the two markers)."""
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    return text[start:end].strip("\n") + "\n"


def write_readme(path: Path) -> None:
    """Replace the generated parameter reference in ``path`` by the current one."""
    text = path.read_text()
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    path.write_text(text[:start] + "\n" + markdown_reference() + text[end:])


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_readme(Path("README.md"))
    else:
        print(markdown_reference(), end="")
