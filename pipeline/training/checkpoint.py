"""Checkpoints: a model's state with the registry name and arguments that rebuild it.

Files are written atomically and read with ``torch.load(..., weights_only=True)``: only
tensors and plain Python values, never arbitrary pickles. The same checkpoint gives the
same bytes: ``torch.save`` to a path names the archive's records after the file, and the
atomic write's temporary file has a random name, so saving goes through a file object
(whose archive is always named ``archive``). DVC's run-cache and remotes can then serve a
retrained model whose weights did not change.
"""

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.errors import PipelineError
from pipeline.io import atomic_path
from pipeline.models import build_model, model_class


def save_checkpoint(
    path: str | os.PathLike,
    state: dict[str, torch.Tensor],
    name: str,
    kwargs: dict[str, Any],
    **meta: Any,
) -> None:
    """Save a state dict with what :func:`load_checkpoint` needs to rebuild the model.

    Args:
        path: destination (``data/models/<task>.pt``).
        state: the model's state dict.
        name: registry name of the model.
        kwargs: constructor arguments given to :func:`pipeline.models.build_model`.
        **meta: plain values to keep beside it (epoch, val accuracy, task, ...).
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        torch.save({"name": name, "kwargs": kwargs, "state": state, **meta}, file)


def load_checkpoint(
    path: str | os.PathLike, device: torch.device, task: str = "avel"
) -> tuple[nn.Module, dict]:
    """Rebuild the model of a checkpoint on ``device``, in eval mode.

    Args:
        path: the checkpoint.
        device: where the model goes.
        task: the task its model must serve (default ``"avel"``; ``"avvp"``).

    Returns:
        ``(model, meta)`` where ``meta`` holds every saved entry except the state.
    """
    path = Path(path)
    if not path.is_file():
        stage = "avvp_train" if task == "avvp" else "the train stage"
        raise PipelineError(f"{path}: checkpoint not found (run {stage} first)")
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 (any unpickling failure means a bad file)
        raise PipelineError(f"{path}: not a readable checkpoint ({err})") from None
    if not isinstance(saved, dict) or not {"name", "kwargs", "state"} <= set(saved):
        raise PipelineError(f"{path}: expected a checkpoint with name, kwargs and state")
    try:
        model_class(saved["name"], task)
    except PipelineError as err:
        raise PipelineError(f"{path}: {err}") from None
    model = build_model(saved["name"], **saved["kwargs"]).to(device)
    model.load_state_dict(saved["state"])
    model.eval()
    return model, {k: v for k, v in saved.items() if k != "state"}
