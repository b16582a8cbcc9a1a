"""What the stage scripts of both tasks share besides the library: their argument and
the params they declare."""

from collections.abc import Sequence
from typing import Any

from pipeline.errors import PipelineError


def task_argument(task: str, valid: Sequence[str]) -> str:
    """``task`` (the stage's argument, ``python -m stages.<name> <task>``) if it is valid.

    Raises:
        PipelineError: naming the valid tasks and what was found.
    """
    if task not in valid:
        raise PipelineError(f"stage argument: expected one of {list(valid)}, found {task!r}")
    return task


def param(params: dict[str, Any], key: str) -> Any:
    """The value of a dotted ``key`` (``avvp.refine.window``) of ``params``."""
    for part in key.split("."):
        params = params[part]
    return params
