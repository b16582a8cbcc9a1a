"""Torch datasets over the AVE store that read visual maps lazily.

The real ``visual_feature.h5`` is 7.7 GB of float64, so :class:`AVEDataset` never loads it:
a batch reads its rows from the HDF5 file (sorted, one read per batch) and casts them to
float32. Models that pool the 7x7 map first take the ``pooled`` view instead, computed once
by streaming the file in blocks (:func:`pooled_visual`, 85 MB for real AVE).

Background-only videos of the weak setting (``*_noisy.h5``) can be appended to a split;
their segments are all background, so their video label is the background class.
"""

import functools
import os
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from pipeline.data import store

_POOL_BLOCK = 64


def pooled_visual(path: str | os.PathLike) -> np.ndarray:
    """Average every visual map over its ``H x W`` grid, streaming the file in blocks.

    The result is kept per file (and its size and modification time) for the life of the
    process, so the train and val datasets of one stage stream the file once, not twice.

    Args:
        path: a visual feature file of shape ``(n, T, H, W, C)``.

    Returns:
        ``(n, T, C)`` float32 array (read-only; index it to get a copy).
    """
    stat = os.stat(path)
    return _pooled_visual(os.fspath(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _pooled_visual(path: str, size: int, mtime_ns: int) -> np.ndarray:
    """:func:`pooled_visual` of one version of a file (``size`` and ``mtime_ns`` key it)."""
    with h5py.File(path, "r") as h5:
        maps = h5[store.FEATURE_KEY]
        n, t, _, _, c = maps.shape
        pooled = np.empty((n, t, c), dtype=np.float32)  # (n, T, C)
        for start in range(0, n, _POOL_BLOCK):
            block = maps[start : start + _POOL_BLOCK]  # (b, T, H, W, C)
            pooled[start : start + len(block)] = block.mean(axis=(2, 3), dtype=np.float64)
    pooled.flags.writeable = False
    return pooled


class FeatureFile:
    """A lazily opened HDF5 feature dataset, reopened in each process that reads it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pid: int | None = None
        self._data: h5py.Dataset | None = None

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Rows in the given order as float32, read row by row straight into one buffer.

        Row reads (``read_direct``) are an order of magnitude faster than an HDF5 fancy
        selection of the same rows, and convert float64 to float32 on the fly.
        """
        if self._pid != os.getpid():
            self._data = h5py.File(self.path, "r")[store.FEATURE_KEY]
            self._pid = os.getpid()
        out = np.empty((len(rows), *self._data.shape[1:]), dtype=np.float32)  # (B, T, ...)
        for i, row in enumerate(rows):
            self._data.read_direct(out, np.s_[int(row)], np.s_[i])
        return out


class _Part:
    """Rows of one pair of feature files with their segment labels."""

    def __init__(self, root: Path, audio: str, visual: str, rows: np.ndarray, labels, pooled):
        self.audio = np.asarray(store.read_array(root / audio), dtype=np.float32)[rows]
        self.visual = FeatureFile(root / visual)
        self.pooled = pooled_visual(root / visual)[rows] if pooled else None
        self.rows = rows
        self.labels = labels  # (k, T)

    def visual_rows(self, idx: np.ndarray) -> np.ndarray:
        return self.pooled[idx] if self.pooled is not None else self.visual.read(self.rows[idx])


class AVEDataset(Dataset):
    """Videos of one split of the store (then its background-only videos), as tensors.

    An item holds ``audio`` ``(T, A)``, ``visual`` ``(T, H, W, C)`` (or ``(T, C)`` when
    ``pooled``), ``labels`` ``(T,)`` int64 segment classes and ``index`` (position in the
    dataset). Batches are fetched together through ``__getitems__``.

    Args:
        root: the store directory.
        split: ``train``, ``val`` or ``test``.
        pooled: give 7x7-averaged visual features instead of maps (default: ``False``).
        background_videos: append the background-only videos (default: ``False``).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        pooled: bool = False,
        background_videos: bool = False,
    ) -> None:
        root = Path(root)
        rows = store.split_order(root, split)
        labels = store.segment_labels(root)[rows]  # (k, T)
        self.parts = [_Part(root, store.AUDIO, store.VISUAL, rows, labels, pooled)]
        if background_videos and (root / store.LABELS_NOISY).exists():
            m = store.read_array(root / store.LABELS_NOISY).shape[0]
            negatives = np.full((m, store.T), store.BACKGROUND, dtype=np.int64)
            part = _Part(
                root, store.AUDIO_NOISY, store.VISUAL_NOISY, np.arange(m), negatives, pooled
            )
            self.parts.append(part)
        self.labels = np.concatenate([part.labels for part in self.parts])  # (n, T)
        self._offsets = np.cumsum([0] + [len(part.rows) for part in self.parts])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def n_background_videos(self) -> int:
        """Background-only videos appended to the split."""
        return len(self) - len(self.parts[0].rows)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"index out of range for a dataset of {len(self)} videos")
        part_of = np.searchsorted(self._offsets, indices, side="right") - 1
        audio, visual = [], []
        order = np.concatenate([np.flatnonzero(part_of == p) for p in range(len(self.parts))])
        for p, part in enumerate(self.parts):
            local = indices[part_of == p] - self._offsets[p]
            audio.append(part.audio[local])
            visual.append(part.visual_rows(local))
        restore = np.argsort(order)
        labels = self.labels[indices]  # (B, T)
        return {
            "audio": torch.from_numpy(np.concatenate(audio)[restore]),  # (B, T, A)
            "visual": torch.from_numpy(np.concatenate(visual)[restore]),  # (B, T, ...)
            "labels": torch.from_numpy(labels),  # (B, T)
            "index": torch.from_numpy(indices),  # (B,)
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {key: value[0] for key, value in self.__getitems__([index]).items()}


def _batch_as_is(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch


def make_loader(
    dataset: AVEDataset, batch_size: int, shuffle: bool = False, seed: int = 0
) -> DataLoader:
    """A loader yielding batched dicts, each fetched by one ``__getitems__`` call.

    Args:
        dataset: the dataset.
        batch_size: videos per batch.
        shuffle: reshuffle every epoch (default: ``False``).
        seed: seed of the shuffling generator (default: 0).
    """
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        collate_fn=_batch_as_is,
    )
