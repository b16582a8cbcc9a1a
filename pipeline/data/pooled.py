"""Pooled visual features: each 7x7 map averaged over its grid, once per store version.

Models that pool the map first (``needs_maps`` False: DPNet and its variants) need only
``(n, T, C)`` features, 85 MB as float32 for real AVE against the 7.7 GB of float64 maps.
The pool stage streams each visual file of the store once, in blocks of rows, and writes
``data/pooled/<visual file stem>.npy``; DVC caches it, so every stage and experiment that
trains or evaluates such a model reads these files instead of the maps.

The mean of a map is taken in float64 and stored as float32, the dtype the models train in.
"""

import functools
import os
from pathlib import Path

import h5py
import numpy as np

from pipeline.data import store
from pipeline.errors import PipelineError
from pipeline.io import atomic_dir, atomic_path

VISUAL_FILES = (store.VISUAL, store.VISUAL_NOISY)
_BLOCK = 64  # rows per read: 128 MB of real float64 maps


def pooled_file(pooled_dir: str | os.PathLike, visual: str) -> Path:
    """Path of the pooled features of the store's visual file named ``visual``."""
    return Path(pooled_dir) / f"{Path(visual).stem}.npy"


def pool_visual(path: str | os.PathLike) -> np.ndarray:
    """Average every map of a visual file over its ``H x W`` grid, streaming row blocks.

    Args:
        path: a visual feature file of shape ``(n, T, H, W, C)``.

    Returns:
        ``(n, T, C)`` float32 array.
    """
    with h5py.File(path, "r") as h5:
        maps = h5[store.FEATURE_KEY]
        n, t, _, _, c = maps.shape
        pooled = np.empty((n, t, c), dtype=np.float32)  # (n, T, C)
        for start in range(0, n, _BLOCK):
            block = maps[start : start + _BLOCK]  # (b, T, H, W, C)
            pooled[start : start + len(block)] = block.mean(axis=(2, 3), dtype=np.float64)
    return pooled


def pool_store(store_dir: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, tuple]:
    """Write the pooled features of every visual file of a store, atomically.

    The files are written into a temporary directory beside ``out_dir``, which then
    replaces ``out_dir`` as a whole: an interrupted run leaves the previous output.

    Args:
        store_dir: a validated store (``data/ave``).
        out_dir: the output directory (``data/pooled``).

    Returns:
        The shape written per visual file name.
    """
    store_dir = Path(store_dir)
    shapes = {}
    with atomic_dir(out_dir) as tmp:
        for name in VISUAL_FILES:
            if (store_dir / name).is_file():
                pooled = pool_visual(store_dir / name)  # (n, T, C)
                with atomic_path(pooled_file(tmp, name)) as dest, open(dest, "wb") as out:
                    np.save(out, pooled, allow_pickle=False)
                shapes[name] = pooled.shape
    return shapes


def load_pooled(pooled_dir: str | os.PathLike, visual_path: str | os.PathLike) -> np.ndarray:
    """The pooled features of a store's visual file, checked against its shape.

    Reads only the visual file's header. The array is kept per file version (path, size
    and modification time) for the life of the process, so that the datasets of one stage
    share one copy.

    Args:
        pooled_dir: the pool stage's output (``data/pooled``).
        visual_path: the visual file of the store the features must belong to.

    Returns:
        ``(n, T, C)`` float32 array (read-only; index it to get a copy).

    Raises:
        PipelineError: the file is missing, unreadable, or does not match the visual file.
    """
    path = pooled_file(pooled_dir, Path(visual_path).name)
    if not path.is_file():
        raise PipelineError(f"{path}: pooled features not found (run the pool stage)")
    stat = path.stat()
    pooled = _load(os.fspath(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with h5py.File(visual_path, "r") as h5:
        n, t, *_, c = h5[store.FEATURE_KEY].shape
    if pooled.shape != (n, t, c) or pooled.dtype != np.float32:
        raise PipelineError(
            f"{path}: expected float32 features of shape ({n}, {t}, {c}) pooled from "
            f"{visual_path}, found {pooled.dtype} {pooled.shape} (rerun the pool stage)"
        )
    return pooled


@functools.lru_cache(maxsize=4)
def _load(path: str, size: int, mtime_ns: int) -> np.ndarray:
    """One version of a pooled file (``size`` and ``mtime_ns`` key it)."""
    try:
        pooled = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise PipelineError(f"{path}: not a readable .npy array ({err})") from None
    pooled.flags.writeable = False
    return pooled
