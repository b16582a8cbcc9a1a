"""Torch datasets over the AVE store that read visual maps lazily.

The real ``visual_feature.h5`` is 7.7 GB of float64, so :class:`AVEDataset` never loads it:
a batch reads its rows from the HDF5 file (sorted, one read per batch) and casts them to
float32. Models that pool the 7x7 map first take the pooled features instead, which the
pool stage computed once per store version (:mod:`pipeline.data.pooled`, ``data/pooled/``,
85 MB for real AVE); such a dataset reads only the header of the maps' file (to check that
the pooled features belong to it).

Background-only videos of the weak setting (``*_noisy.h5``) can be appended to a split;
their segments are all background, so their video label is the background class.

What a dataset holds in memory (audio, pooled visual features, labels) is kept as tensors
that :meth:`AVEDataset.to` moves to the training device once, so that a batch is gathered
there with no host-to-device copy (:func:`pipeline.training.loop.place`); maps stay on file and come
through :func:`make_loader`'s worker processes into pinned memory instead.
"""

import os
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from pipeline import hooks
from pipeline.data import store
from pipeline.data.pooled import load_pooled


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
        data = self._dataset()
        out = np.empty((len(rows), *data.shape[1:]), dtype=np.float32)  # (B, T, ...)
        for i, row in enumerate(rows):
            data.read_direct(out, np.s_[int(row)], np.s_[i])
        hooks.current().read(out.size * data.dtype.itemsize)
        return out

    def read_segments(self, rows: np.ndarray, segments: np.ndarray) -> np.ndarray:
        """The maps of (row, segment) pairs as float32, one read per distinct row.

        A composed video (an SMB-fused one) takes its segments from up to ``T`` videos.
        Each distinct row is read once, over the span from its first to its last wanted
        segment: a whole original video is one read, and a video that lends two segments
        costs two segments, not ``T``.

        Args:
            rows: ``(B, T)`` store rows.
            segments: ``(B, T)`` segment indices.

        Returns:
            ``(B, T, ...)`` float32 maps.
        """
        data = self._dataset()
        flat_rows, flat_segments = rows.ravel(), segments.ravel()  # (B * T,)
        unique, inverse = np.unique(flat_rows, return_inverse=True)
        first = np.full(len(unique), data.shape[1])
        last = np.full(len(unique), -1)
        np.minimum.at(first, inverse, flat_segments)
        np.maximum.at(last, inverse, flat_segments)
        offsets = np.concatenate([[0], np.cumsum(last - first + 1)])  # (U + 1,)
        out = np.empty((offsets[-1], *data.shape[2:]), dtype=np.float32)  # (S, H, W, C)
        for i, row in enumerate(unique):
            source = np.s_[int(row), int(first[i]) : int(last[i]) + 1]
            data.read_direct(out, source, np.s_[offsets[i] : offsets[i + 1]])
        at = offsets[inverse] + flat_segments - first[inverse]  # (B * T,)
        maps = out[at].reshape(*rows.shape, *data.shape[2:])  # (B, T, H, W, C)
        hooks.current().read(maps.size * data.dtype.itemsize)
        return maps

    def _dataset(self) -> h5py.Dataset:
        """The HDF5 dataset, opened once per process (DataLoader workers open their own)."""
        if self._pid != os.getpid():
            self._data = h5py.File(self.path, "r")[store.FEATURE_KEY]
            self._pid = os.getpid()
        return self._data


class _Part:
    """Rows of one pair of feature files with their segment labels, as tensors."""

    def __init__(self, root: Path, audio: str, visual: str, rows: np.ndarray, labels, pooled):
        audio_rows = np.asarray(store.read_array(root / audio), dtype=np.float32)[rows]
        self.audio = torch.from_numpy(audio_rows)  # (k, T, A)
        self.visual = FeatureFile(root / visual)
        self.pooled = None
        if pooled is not None:
            self.pooled = torch.from_numpy(load_pooled(pooled, root / visual)[rows])  # (k, T, C)
        self.rows = rows
        self.labels = labels  # (k, T)

    def visual_rows(self, idx: np.ndarray) -> torch.Tensor:
        if self.pooled is not None:
            return self.pooled[torch.from_numpy(idx).to(self.pooled.device)]  # (b, T, C)
        return torch.from_numpy(self.visual.read(self.rows[idx]))  # (b, T, H, W, C)

    def to(self, device: torch.device) -> None:
        self.audio = self.audio.to(device)
        self.pooled = None if self.pooled is None else self.pooled.to(device)


class AVEDataset(Dataset):
    """Videos of one split of the store (then its background-only videos), as tensors.

    An item holds ``audio`` ``(T, A)``, ``visual`` ``(T, H, W, C)`` (or ``(T, C)`` when
    ``pooled``), ``labels`` ``(T,)`` int64 segment classes and ``index`` (position in the
    dataset). Batches are fetched together through ``__getitems__``.

    Args:
        root: the store directory.
        split: ``train``, ``val`` or ``test``.
        pooled: the directory of the store's pooled features (the pool stage's
            ``data/pooled``) to give ``(T, C)`` 7x7-averaged features instead of maps;
            :obj:`None` gives the maps (default).
        background_videos: append the background-only videos (default: ``False``).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        pooled: str | os.PathLike | None = None,
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
        self._labels = torch.from_numpy(self.labels)  # (n, T), on the data's device
        self._offsets = np.cumsum([0] + [len(part.rows) for part in self.parts])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def n_background_videos(self) -> int:
        """Background-only videos appended to the split."""
        return len(self) - len(self.parts[0].rows)

    @property
    def nbytes(self) -> int:
        """Bytes of the tensors held in memory (what :meth:`to` moves)."""
        tensors = [self._labels] + [part.audio for part in self.parts]
        tensors += [part.pooled for part in self.parts if part.pooled is not None]
        return sum(t.numel() * t.element_size() for t in tensors)

    def to(self, device: torch.device) -> "AVEDataset":
        """Keep audio, pooled features and labels on ``device``; batches are gathered there.

        Maps stay on file; the ``visual`` of a maps dataset stays on the CPU.
        """
        for part in self.parts:
            part.to(device)
        self._labels = self._labels.to(device)
        return self

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"index out of range for a dataset of {len(self)} videos")
        part_of = np.searchsorted(self._offsets, indices, side="right") - 1
        audio, visual = [], []
        order = np.concatenate([np.flatnonzero(part_of == p) for p in range(len(self.parts))])
        for p, part in enumerate(self.parts):
            local = indices[part_of == p] - self._offsets[p]
            audio.append(part.audio[torch.from_numpy(local).to(part.audio.device)])
            visual.append(part.visual_rows(local))
        restore = torch.from_numpy(np.argsort(order))
        audio, visual = torch.cat(audio), torch.cat(visual)  # (B, T, A), (B, T, ...)
        return {
            "audio": audio[restore.to(audio.device)],  # (B, T, A)
            "visual": visual[restore.to(visual.device)],  # (B, T, ...)
            "labels": self._labels[torch.from_numpy(indices).to(self._labels.device)],  # (B, T)
            "index": torch.from_numpy(indices),  # (B,), on the CPU
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {key: value[0] for key, value in self.__getitems__([index]).items()}


def _batch_as_is(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """A loader yielding batched dicts, each fetched by one ``__getitems__`` call.

    For maps read from file, ``workers`` processes read the next batches while the model
    computes, into page-locked memory with ``pin_memory`` (so that the copy to the GPU is
    asynchronous). Workers are not kept across epochs: each epoch's iterator draws from the
    shuffling generator the same way whether or not the run was resumed
    (:mod:`pipeline.training.resume`).

    Args:
        dataset: the dataset.
        batch_size: videos per batch.
        shuffle: reshuffle every epoch (default: ``False``).
        seed: seed of the shuffling generator (default: 0).
        workers: reading processes, ``train.workers`` (default: 0, read in this process).
        pin_memory: put batches in page-locked memory (default: ``False``).
    """
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        collate_fn=_batch_as_is,
        num_workers=workers,
        pin_memory=pin_memory,
    )
