"""Reading ``params.yaml``: the pipeline's only interface (DESIGN.md §5).

Stages read their sections through :func:`section`, which rejects keys nobody reads and
reports missing ones, so that a typo in ``dvc exp run -S`` fails loudly instead of being
silently ignored.
"""

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import PipelineError


def load_params(path: str | os.PathLike = "params.yaml") -> dict[str, Any]:
    """Load the parameter file.

    Args:
        path: the YAML file (default: ``params.yaml``).
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: parameter file not found")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise PipelineError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(params, dict):
        found = type(params).__name__
        raise PipelineError(f"{path}: expected a mapping of sections, found {found}")
    return params


def section(
    params: dict[str, Any], name: str, keys: Iterable[str], optional: Iterable[str] = ()
) -> dict[str, Any]:
    """Return ``params[name]`` after checking its keys.

    Args:
        params: the whole parameter mapping.
        name: a dotted section name (``data.synthetic`` reads ``params['data']['synthetic']``).
        keys: the keys the reader requires.
        optional: keys the reader accepts but does not require (default: none).

    Raises:
        PipelineError: the section is missing, or has an unknown or a missing key.
    """
    value: Any = params
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            raise PipelineError(f"params.yaml: missing section '{name}'")
        value = value[part]
    if not isinstance(value, dict):
        raise PipelineError(f"params.yaml: '{name}' must be a mapping, found {value!r}")
    keys, optional = set(keys), set(optional)
    unknown = sorted(set(value) - keys - optional)
    if unknown:
        valid = ", ".join(sorted(keys | optional))
        raise PipelineError(
            f"params.yaml: unknown key(s) {', '.join(f'{name}.{k}' for k in unknown)}; "
            f"valid keys of '{name}': {valid}"
        )
    missing = sorted(keys - set(value))
    if missing:
        raise PipelineError(
            f"params.yaml: missing key(s) {', '.join(f'{name}.{k}' for k in missing)}"
        )
    return value


def choice(value: Any, key: str, allowed: Iterable[str]) -> str:
    """Check that ``value`` is one of ``allowed``; the message names ``key``."""
    allowed = list(allowed)
    if value not in allowed:
        raise PipelineError(f"params.yaml: {key} must be one of {allowed}, found {value!r}")
    return value


# The keys of each section, by reader (dvc.yaml declares exactly the keys each stage reads).
TRAIN_KEYS = (
    "seed",
    "device",
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "weight_decay",
    "scheduler",
    "step_size",
    "gamma",
    "milestones",
    "floors",
    "background_videos",
)
AUGMENT_BUILD_KEYS = ("seed", "replicas_per_video", "smb_per_class")  # augment stage
AUGMENT_TRAIN_KEYS = ("replicate", "link", "smb_per_class")  # train@sel
REFINE_TRAIN_KEYS = ("auxiliary", "window", "stride")  # train@wsel (Step 1)
REFINE_LABEL_KEYS = ("window", "stride", "tau", "labels")  # refine stage (Step 2)
REFINE_RETRAIN_KEYS = ("retrain_epochs",)  # retrain@wsel (Step 3)
AUGMENT_KEYS = tuple(dict.fromkeys(AUGMENT_BUILD_KEYS + AUGMENT_TRAIN_KEYS))
REFINE_KEYS = tuple(dict.fromkeys(REFINE_TRAIN_KEYS + REFINE_LABEL_KEYS + REFINE_RETRAIN_KEYS))


def keys_of(params: dict[str, Any], name: str, keys: Iterable[str], all_keys: Iterable[str]):
    """The values of ``keys`` of section ``name``, after checking it against ``all_keys``.

    For sections that several stages read in part: every key must be one that some stage
    reads (``all_keys``), and the reader gets only the ones it declares.
    """
    values = section(params, name, all_keys)
    return {key: values[key] for key in keys}
