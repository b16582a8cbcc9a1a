"""Videos composed of segments of the store: originals, replicas and SMB-fused videos.

An augmented video (docs/design.md §4, ``data/augmented/``) is never stored as features: it is a
``(T, 2)`` array of (store row, segment) pairs, and :class:`ComposedDataset` gathers the
features of those segments from ``data/ave/`` when a batch is read. An original training
video is the composition ``[(row, 0), (row, 1), ..., (row, T - 1)]``
(:func:`identity_sources`), so originals and augmentations go through one reader.
"""

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from pipeline.data import store
from pipeline.data.dataset import FeatureFile
from pipeline.data.pooled import load_pooled
from pipeline.errors import PipelineError


def identity_sources(rows: np.ndarray, T: int = store.T) -> np.ndarray:
    """The compositions of whole store videos: ``sources[i, t] = (rows[i], t)``.

    Args:
        rows: ``(n,)`` store rows.
        T: segments per video (default 10).

    Returns:
        ``(n, T, 2)`` int64 (store row, segment) pairs.
    """
    rows = np.asarray(rows, dtype=np.int64)
    segments = np.broadcast_to(np.arange(T), (len(rows), T))  # (n, T)
    return np.stack([np.broadcast_to(rows[:, None], (len(rows), T)), segments], axis=-1)


def check_compositions(sources: np.ndarray, labels: np.ndarray, n_rows: int, what: str) -> None:
    """Raise :class:`PipelineError` unless ``sources``/``labels`` are valid compositions.

    Args:
        sources: ``(n, T, 2)`` (store row, segment) pairs.
        labels: ``(n, T)`` segment classes.
        n_rows: rows of the store (valid rows are ``0 .. n_rows - 1``).
        what: the name of the data in the message (e.g. a file).
    """
    if sources.ndim != 3 or sources.shape[1:] != (store.T, 2):
        raise PipelineError(
            f"{what}: expected sources of shape (n, {store.T}, 2), found {sources.shape}"
        )
    if labels.shape != sources.shape[:2]:
        raise PipelineError(
            f"{what}: expected labels of shape {sources.shape[:2]}, found {labels.shape}"
        )
    if sources.size and (sources[..., 0].min() < 0 or sources[..., 0].max() >= n_rows):
        raise PipelineError(
            f"{what}: source rows must lie in [0, {n_rows}), found "
            f"[{sources[..., 0].min()}, {sources[..., 0].max()}]"
        )
    if sources.size and (sources[..., 1].min() < 0 or sources[..., 1].max() >= store.T):
        raise PipelineError(f"{what}: source segments must lie in [0, {store.T})")
    if labels.size and (labels.min() < 0 or labels.max() >= store.N_CLASSES):
        raise PipelineError(f"{what}: labels must lie in [0, {store.N_CLASSES})")


def _shared_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor over the process-wide read-only pooled array, without a copy.

    The dataset only indexes it (which copies), so PyTorch's warning about a non-writable
    array does not apply; it is silenced here only.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


class ComposedDataset(Dataset):
    """Videos whose segments are gathered from (store row, segment) pairs.

    Items have the keys of :class:`~pipeline.data.dataset.AVEDataset`: ``audio``
    ``(T, A)``, ``visual`` ``(T, H, W, C)`` (``(T, C)`` when ``pooled``), ``labels``
    ``(T,)`` and ``index``. Audio of the whole store is held in memory (21 MB of float32
    for real AVE), like the pooled features (85 MB), and :meth:`to` moves both to the
    training device; visual maps are read per batch, one read per distinct (row, segment)
    pair (:meth:`~pipeline.data.dataset.FeatureFile.read_segments`).

    Args:
        root: the store directory.
        sources: ``(n, T, 2)`` int (store row, segment) pairs.
        labels: ``(n, T)`` int segment classes of the composed videos.
        pooled: the directory of the store's pooled features (``data/pooled``) to give
            7x7-averaged features instead of maps; :obj:`None` gives the maps (default).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        sources: np.ndarray,
        labels: np.ndarray,
        pooled: str | os.PathLike | None = None,
    ) -> None:
        root = Path(root)
        audio = np.asarray(store.read_array(root / store.AUDIO), dtype=np.float32)
        check_compositions(sources, labels, len(audio), "compositions")
        self.audio = torch.from_numpy(audio)  # (N, T, A): the whole store
        self.sources = np.asarray(sources, dtype=np.int64)  # (n, T, 2)
        self.labels = np.asarray(labels, dtype=np.int64)  # (n, T)
        self._labels = torch.from_numpy(self.labels)  # (n, T), on the data's device
        self.pooled = None
        if pooled is not None:
            self.pooled = _shared_tensor(load_pooled(pooled, root / store.VISUAL))  # (N, T, C)
        self.maps = FeatureFile(root / store.VISUAL)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def nbytes(self) -> int:
        """Bytes of the tensors held in memory (what :meth:`to` moves)."""
        tensors = [self.audio, self._labels] + ([] if self.pooled is None else [self.pooled])
        return sum(t.numel() * t.element_size() for t in tensors)

    def to(self, device: torch.device) -> "ComposedDataset":
        """Keep audio, pooled features and labels on ``device``; batches are gathered there."""
        self.audio = self.audio.to(device)
        self._labels = self._labels.to(device)
        self.pooled = None if self.pooled is None else self.pooled.to(device)
        return self

    def _visual(self, rows: np.ndarray, segments: np.ndarray) -> torch.Tensor:
        if self.pooled is None:
            return torch.from_numpy(self.maps.read_segments(rows, segments))  # (B, T, H, W, C)
        rows_t, segments_t = (torch.from_numpy(x).to(self.pooled.device) for x in (rows, segments))
        return self.pooled[rows_t, segments_t]  # (B, T, C)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"index out of range for a dataset of {len(self)} videos")
        rows, segments = self.sources[indices, :, 0], self.sources[indices, :, 1]  # (B, T)
        device = self.audio.device
        at = (torch.from_numpy(rows).to(device), torch.from_numpy(segments).to(device))
        return {
            "audio": self.audio[at],  # (B, T, A)
            "visual": self._visual(rows, segments),  # (B, T, ...)
            "labels": self._labels[torch.from_numpy(indices).to(device)],  # (B, T)
            "index": torch.from_numpy(indices),  # (B,), on the CPU
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {key: value[0] for key, value in self.__getitems__([index]).items()}
