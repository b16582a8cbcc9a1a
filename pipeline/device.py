"""Where a stage runs: ``auto`` is a GPU of its own when CUDA is present, else the CPU.

Experiments started together (``dvc queue start -j N``, the local executor of
:mod:`pipeline.experiments.cluster`) all see the same free memory when they start, so "the GPU with
the
most free memory" alone would put them all on ``cuda:0``. Each stage process therefore
claims its GPU with a lock file per device (:func:`claim_gpu`), held until the process
exits (an ``flock``: released by the kernel even when the process is killed).
"""

import os
import tempfile
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from pipeline.errors import PipelineError

_HELD: list[FileLock] = []  # the claim of this process (at most one lock)


def lock_dir() -> Path:
    """The folder of the per-device locks: ``$AVEL_GPU_LOCKS``, else one per user in /tmp."""
    default = Path(tempfile.gettempdir()) / f"avel-gpu-locks-{os.getuid()}"
    return Path(os.environ.get("AVEL_GPU_LOCKS", default))


def claim_gpu(free: list[int], ids: list[str], locks: Path | None = None) -> int:
    """Index of the GPU this process takes, holding its lock until the process exits.

    The GPUs are tried by free memory, most first (ties: the lowest index); the first whose
    lock no other process holds is taken. When every GPU is held, the one with the most
    free memory is shared. A second claim of the same process releases its first.

    Args:
        free: free bytes per visible GPU.
        ids: a name per visible GPU that is the same in every process (its UUID), which
            names its lock file.
        locks: the folder of the lock files (default :func:`lock_dir`).
    """
    while _HELD:
        _HELD.pop().release()
    folder = lock_dir() if locks is None else locks
    folder.mkdir(parents=True, exist_ok=True)
    order = sorted(range(len(free)), key=lambda i: (-free[i], i))
    for index in order:
        lock = FileLock(folder / f"{ids[index]}.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue
        _HELD.append(lock)
        return index
    return order[0]


def gpu_ids() -> list[str]:
    """The UUID of each visible GPU (the same whatever ``CUDA_VISIBLE_DEVICES`` numbers it)."""
    return [str(torch.cuda.get_device_properties(i).uuid) for i in range(torch.cuda.device_count())]


def least_used_gpu() -> int:
    """Index of the visible GPU this process claims (:func:`claim_gpu` on the free memory)."""
    free = [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
    return claim_gpu(free, gpu_ids())


def resolve_device(name: str) -> torch.device:
    """``auto`` → a GPU of this process's own when CUDA is present (:func:`least_used_gpu`),
    else the CPU; ``cpu`` / ``cuda`` / ``cuda:N`` as given."""
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
