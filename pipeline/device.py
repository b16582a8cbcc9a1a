"""Where a stage runs: ``auto`` is the least used GPU when CUDA is present, else the CPU."""

import numpy as np
import torch

from pipeline.errors import PipelineError


def least_used_gpu() -> int:
    """Index of the visible GPU with the most free memory now (ties: the lowest index).

    Experiments of a queue (``dvc queue start -j N``) that start together each pick one at
    start, so that N experiments on N GPUs spread over them instead of sharing ``cuda:0``.
    """
    free = [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
    return int(np.argmax(free))


def resolve_device(name: str) -> torch.device:
    """``auto`` → the least used GPU when CUDA is present, else the CPU; ``cpu`` / ``cuda`` /
    ``cuda:N`` as given."""
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", least_used_gpu())
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PipelineError(f"params.yaml: device '{name}' requested but CUDA is not available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise PipelineError(f"params.yaml: unknown device {name!r} (auto, cpu, cuda)") from None
