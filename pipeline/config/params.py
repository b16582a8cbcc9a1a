"""Reading ``params.yaml``: the pipeline's only interface (docs/design.md §5).

A stage calls :func:`load_params` with the sections it reads; they are checked against the
schema (:mod:`pipeline.config.schema`) before the stage does any work, so that a typo in
``params.yaml`` or in ``dvc exp run -S`` ends the stage at once with one clear message.
"""

import os
from pathlib import Path
from typing import Any

import yaml

from pipeline.config.schema import validate_params
from pipeline.errors import PipelineError


def load_params(
    sections: tuple[str, ...] = (),
    path: str | os.PathLike = "params.yaml",
    typed: bool = False,
    with_model: bool = True,
) -> dict[str, Any]:
    """Load the parameter file and validate ``sections``.

    Args:
        sections: the sections the caller reads (default: none; unknown sections are
            rejected either way).
        path: the YAML file (default: ``params.yaml``).
        typed: give the checked sections as schema objects (default ``False``: mappings;
            :func:`pipeline.config.schema.validate_params`).
        with_model: check ``avvp.model`` with the ``avvp`` section (default ``True``;
            ``False`` for the stages that build no AVVP model: the check imports every model).
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
    return validate_params(params, sections, str(path), typed, with_model)


# The keys each stage reads of the sections that several stages read in part (dvc.yaml
# declares exactly these; tests/config/test_dvc_yaml.py keeps the two equal).
SYNTHESIZE_KEYS = ("source", "synthetic")  # synthesize stage
DOWNLOAD_KEYS = (  # download stage
    "source",
    "local_dir",
    "download_dir",
    "sources",
    "right_labels",
    "videos_dir",
    "features",
    "on_bad_video",
    "device",
    "weights",
)
AUGMENT_BUILD_KEYS = ("seed", "replicas_per_video", "smb_per_class")  # augment stage
AUGMENT_TRAIN_KEYS = ("replicate", "link", "smb_per_class")  # train@sel
REFINE_TRAIN_KEYS = ("auxiliary", "window", "stride")  # train@wsel (Step 1)
REFINE_LABEL_KEYS = ("window", "stride", "tau", "labels")  # refine stage (Step 2)
REFINE_RETRAIN_KEYS = ("retrain_epochs",)  # retrain@wsel (Step 3)
