"""Composed videos (replicas, SMB fusions) as index arrays into the AVE store, and their files.

A composition names, for each of its T segments, the store row and segment whose features
it takes; features are gathered by the consumer, never copied here.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.npz import fail, load_npz, save_npz

_SPEC = {
    "sources": (3, "i"),
    "labels": (2, "i"),
    "origin": (1, "i"),
    "record": (2, "i"),
    "fallback_names": (1, "U"),
    "fallback_counts": (1, "i"),
}


@dataclass(frozen=True)
class Compositions:
    """Composed videos, one entry per video.

    Args:
        sources: ``(n, T, 2)`` int64 ``(store row, segment)`` each segment is taken from.
        labels: ``(n, T)`` int64 segment classes of the composed videos.
        origin: ``(n,)`` int64 store row of the source video of a replica, ``-1`` for SMB.
        record: ``(n, T)`` int64 index of the database record each segment comes from
            (``-1``: the source video's own segment, a fallback).
        fallbacks: fallback name → count (see the function that made them).
    """

    sources: np.ndarray  # (n, T, 2)
    labels: np.ndarray  # (n, T)
    origin: np.ndarray  # (n,)
    record: np.ndarray  # (n, T)
    fallbacks: dict[str, int]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def save_compositions(path: str | os.PathLike, compositions: Compositions) -> None:
    """Write ``compositions`` as an ``.npz`` (no pickle), atomically.

    Args:
        path: destination file.
        compositions: the composed videos.
    """
    save_npz(
        path,
        {
            "sources": compositions.sources,
            "labels": compositions.labels,
            "origin": compositions.origin,
            "record": compositions.record,
            "fallback_names": np.array(list(compositions.fallbacks), dtype=str),
            "fallback_counts": np.array(list(compositions.fallbacks.values()), dtype=np.int64),
        },
    )


def load_compositions(path: str | os.PathLike) -> Compositions:
    """Read compositions written by :func:`save_compositions`.

    Args:
        path: the ``.npz`` file.

    Raises:
        PipelineError: a missing or malformed file, naming the file, key, expected and found.
    """
    path = Path(path)
    data = load_npz(path, _SPEC)
    n, t = data["labels"].shape
    expected = {"sources": (n, t, 2), "origin": (n,), "record": (n, t)}
    expected["fallback_counts"] = data["fallback_names"].shape
    for key, shape in expected.items():
        if data[key].shape != shape:
            raise fail(path, key, f"shape {shape}", f"shape {data[key].shape}")
    if data["sources"].size and data["sources"].min() < 0:
        raise fail(path, "sources", "non-negative store rows and segments", "a negative entry")
    names, values = data["fallback_names"].tolist(), data["fallback_counts"].tolist()
    fallbacks = dict(zip(names, values, strict=True))
    return Compositions(data["sources"], data["labels"], data["origin"], data["record"], fallbacks)
