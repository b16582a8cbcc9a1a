"""Resuming an interrupted training stage from its last completed epoch (docs/design.md §7).

After every epoch :func:`pipeline.training.loop.fit` writes the whole training state (model,
optimizer, schedule, gradient scaler, every random generator, the shuffling generator of
the loader, the objective's own generator, the best state on val and the log so far) to
one file under ``.resume/`` (git- and DVC-ignored, never a stage output), atomically, so a
``SIGKILL`` leaves either the previous epoch's state or the new one. A rerun with the same
params and data continues from there and ends bit-identical, on the CPU, to a run that was
never interrupted; the stage removes the file once its outputs are written.

The state is only valid for the run that wrote it: :func:`fingerprint` hashes the params
the stage reads and its input data, and a state with another fingerprint (or one that
cannot be read) is ignored with one message, then overwritten after the first epoch.

A job that may be preempted sets :data:`RESUME_DIR_ENV` to a folder on shared storage (the
cluster's jobs do, :mod:`pipeline.experiments.cluster`): the states then live there, under the
same file names, and survive the job's node-local clone.
"""

import contextlib
import hashlib
import json
import os
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.io import atomic_path

RESUME_DIR_ENV = "AVEL_RESUME_DIR"  # where the states go instead of .resume/ when set
HASHED_BYTES = 64 * 2**20  # input files up to this size are hashed; larger ones by stat
_CHUNK = 2**20


def _file_identity(path: Path) -> str:
    """Content hash of a small file; size and modification time of a large one."""
    stat = path.stat()
    if stat.st_size > HASHED_BYTES:
        return f"size {stat.st_size} mtime {stat.st_mtime_ns}"
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(settings: dict[str, Any], inputs: Iterable[str | os.PathLike]) -> str:
    """A hash of the params a training stage reads and of its input files.

    Files up to :data:`HASHED_BYTES` are hashed by content, larger ones (the 7.7 GB visual
    maps) by size and modification time; a directory counts as all files below it.

    Args:
        settings: JSON-serialisable params (model, train and the stage's other keys).
        inputs: files or directories the stage reads (absent ones count as absent).
    """
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for root in map(Path, inputs):
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            identity = _file_identity(path) if path.is_file() else "absent"
            digest.update(f"{path.as_posix()}\0{identity}\0".encode())
    return digest.hexdigest()


def rng_state() -> dict[str, Any]:
    """The states of python's, numpy's legacy and torch's (CPU and CUDA) generators."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()  # noqa: NPY002
    return {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by :func:`rng_state`."""
    kind, keys, position, has_gauss, gauss = state["numpy"]
    random.setstate(state["python"])
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumeFile:
    """The resume state of one training stage: ``path``, valid for ``key`` only.

    Args:
        path: where the state lives (``.resume/<task>.pt``; in the folder
            ``$AVEL_RESUME_DIR`` instead when that is set, :data:`RESUME_DIR_ENV`).
        key: the run's :func:`fingerprint`.
    """

    def __init__(self, path: str | os.PathLike, key: str) -> None:
        folder = os.environ.get(RESUME_DIR_ENV)
        self.path = Path(folder) / Path(path).name if folder else Path(path)
        self.key = key

    def load(self) -> dict[str, Any] | None:
        """The saved state of this run, or ``None`` (saying why when a file is ignored)."""
        if not self.path.is_file():
            return None
        try:
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 (any unreadable file is ignored alike)
            print(f"{self.path}: unreadable resume state ignored ({err}); starting at epoch 1")
            return None
        if not isinstance(saved, dict) or saved.get("key") != self.key:
            print(f"{self.path}: resume state of other params or data ignored; starting at epoch 1")
            return None
        print(f"{self.path}: resuming after epoch {saved['epoch']}")
        return saved

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` (which must hold ``epoch``) atomically."""
        with atomic_path(self.path) as tmp:
            torch.save({**state, "key": self.key}, tmp)

    def remove(self) -> None:
        """Delete the state (the stage's outputs are written), any partial write of it left
        by a kill during :meth:`save`, and the folder once empty."""
        self.path.unlink(missing_ok=True)
        for partial in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            partial.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()
