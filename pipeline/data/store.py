"""The AVE store: the official file layout of docs/design.md §3, its validation and its writer.

Every data source (synthetic, local, ave) produces this layout; :func:`validate_store` checks
it the same way for all of them and fails with one message naming the file, the key, what
was expected and what was found.
"""

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from pipeline.errors import PipelineError
from pipeline.io import atomic_path

T = 10
N_CLASSES = 29
BACKGROUND = 28
FEATURE_KEY = "avadataset"
ORDER_KEY = "order"
SPLITS = ("train", "val", "test")

AUDIO = "audio_feature.h5"
VISUAL = "visual_feature.h5"
LABELS = "labels.h5"
AUDIO_NOISY = "audio_feature_noisy.h5"
VISUAL_NOISY = "visual_feature_noisy.h5"
LABELS_NOISY = "labels_noisy.h5"
RIGHT_LABELS = "right_labels.h5"
ANNOTATIONS = "Annotations.txt"
NOISY_FILES = (AUDIO_NOISY, VISUAL_NOISY, LABELS_NOISY)
OFFICIAL_AUDIO_DIM = 128
OFFICIAL_MAP = (7, 7, 512)

# Rows validated per read, so that the 7.7 GB visual file never sits in memory whole.
_VALIDATION_BLOCK = 64

# remember(path, fact, compute) -> value: compute's result, or the one recorded for this
# version of the file (pipeline.data.ledger.FileLedger.fact).
Remember = Callable[[Path, str, Callable[[], str]], str]


def _compute(path: Path, fact: str, compute: Callable[[], str]) -> str:
    """A :data:`Remember` that remembers nothing."""
    return compute()


def order_file(split: str) -> str:
    """File name of the row order of ``split`` (``train``, ``val`` or ``test``)."""
    return f"{split}_order.h5"


@dataclass(frozen=True)
class StoreInfo:
    """What :func:`validate_store` learned about a valid store.

    Args:
        n_videos: rows of the main feature files.
        audio_dim: audio feature size (128 for VGGish).
        map_shape: visual map shape ``(H, W, C)`` ((7, 7, 512) for VGG-19 pool5).
        splits: number of videos per split.
        n_background: background-only videos of the weak setting (0 when absent).
        has_right_labels: whether ``right_labels.h5`` (C-AVE) is present.
    """

    n_videos: int
    audio_dim: int
    map_shape: tuple[int, int, int]
    splits: dict[str, int]
    n_background: int
    has_right_labels: bool


def _fail(path: Path, key: str | None, expected: str, found: str) -> PipelineError:
    where = f"{path}" if key is None else f"{path} [key '{key}']"
    return PipelineError(f"{where}: expected {expected}, found {found}")


def _open_dataset(h5: h5py.File, path: Path, key: str) -> h5py.Dataset:
    if key not in h5:
        raise _fail(path, key, f"an HDF5 dataset named '{key}'", f"keys {sorted(h5.keys())}")
    if not isinstance(h5[key], h5py.Dataset):
        raise _fail(path, key, "an HDF5 dataset", f"a {type(h5[key]).__name__.lower()}")
    return h5[key]


@contextmanager
def _read(path: Path, key: str) -> Iterator[h5py.Dataset]:
    if not path.is_file():
        raise PipelineError(f"{path}: file not found (expected key '{key}')")
    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise _fail(path, key, "an HDF5 file", f"an unreadable file ({err})") from None
    with h5:
        yield _open_dataset(h5, path, key)


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _check_shape(ds: h5py.Dataset, path: Path, expected: tuple) -> None:
    """Compare a shape with a pattern whose ``None`` entries match any size."""
    ok = len(ds.shape) == len(expected) and all(
        e is None or e == f for e, f in zip(expected, ds.shape, strict=True)
    )
    if not ok:
        pattern = _shape_text(tuple("*" if e is None else e for e in expected))
        raise _fail(path, ds.name.lstrip("/"), f"shape {pattern}", _shape_text(ds.shape))


def _check_float(ds: h5py.Dataset, path: Path) -> None:
    if ds.dtype.kind != "f":
        raise _fail(path, ds.name.lstrip("/"), "a floating-point dtype", str(ds.dtype))


def _blocks(n: int) -> Iterator[slice]:
    for start in range(0, n, _VALIDATION_BLOCK):
        yield slice(start, min(start + _VALIDATION_BLOCK, n))


def _check_finite(ds: h5py.Dataset, path: Path, remember: Remember) -> None:
    """Read every row, once per file version when ``remember`` keeps files found finite."""

    def check() -> str:
        for block in _blocks(ds.shape[0]):
            values = ds[block]
            if not np.isfinite(values).all():
                bad = block.start + int(np.argwhere(~np.isfinite(values))[0][0])
                found = f"NaN or inf in row {bad}"
                raise _fail(path, ds.name.lstrip("/"), "finite values", found)
        return "yes"

    remember(path, f"finite:{ds.name.lstrip('/')}", check)


def _check_one_hot(ds: h5py.Dataset, path: Path) -> None:
    for block in _blocks(ds.shape[0]):
        values = np.asarray(ds[block])
        bad = ~np.isin(values, (0, 1)).all(axis=-1) | (values.sum(axis=-1) != 1)
        if bad.any():
            local = tuple(np.argwhere(bad)[0])
            row = (block.start + int(local[0]), *(int(i) for i in local[1:]))
            raise _fail(
                path,
                ds.name.lstrip("/"),
                f"one-hot rows over {N_CLASSES} classes (0/1 values summing to 1)",
                f"row {row} = {values[local].tolist()}",
            )


def _check_features(
    store: Path, audio: str, visual: str, n: int | None, dims: tuple | None, remember: Remember
) -> tuple[int, int, tuple[int, int, int]]:
    """Validate an audio/visual pair of feature files; return (n, audio_dim, map_shape)."""
    audio_dim, map_shape = (None, (None, None, None)) if dims is None else dims
    with _read(store / audio, FEATURE_KEY) as ds:
        _check_shape(ds, store / audio, (n, T, audio_dim))
        _check_float(ds, store / audio)
        _check_finite(ds, store / audio, remember)
        n, _, audio_dim = ds.shape
    with _read(store / visual, FEATURE_KEY) as ds:
        _check_shape(ds, store / visual, (n, T, *map_shape))
        _check_float(ds, store / visual)
        _check_finite(ds, store / visual, remember)
        map_shape = tuple(ds.shape[2:])
    return n, audio_dim, map_shape


def _check_labels(path: Path, shape: tuple) -> None:
    with _read(path, FEATURE_KEY) as ds:
        _check_shape(ds, path, shape)
        if ds.dtype.kind not in "fiub":
            raise _fail(path, FEATURE_KEY, "a numeric dtype", str(ds.dtype))
        _check_one_hot(ds, path)


def _read_order(path: Path, n: int) -> np.ndarray:
    with _read(path, ORDER_KEY) as ds:
        _check_shape(ds, path, (None,))
        values = ds[()]
    if values.dtype.kind not in "iu" and not (
        values.dtype.kind == "f" and np.array_equal(values, np.round(values))
    ):
        raise _fail(path, ORDER_KEY, "integer row indices", f"dtype {values.dtype}")
    values = values.astype(np.int64)
    if values.size and (values.min() < 0 or values.max() >= n):
        raise _fail(path, ORDER_KEY, f"indices in [0, {n})", f"[{values.min()}, {values.max()}]")
    if np.unique(values).size != values.size:
        raise _fail(path, ORDER_KEY, "no repeated index", "repeated indices")
    return values


def _check_orders(store: Path, n: int) -> dict[str, int]:
    orders = {split: _read_order(store / order_file(split), n) for split in SPLITS}
    for i, first in enumerate(SPLITS):
        for second in SPLITS[i + 1 :]:
            shared = np.intersect1d(orders[first], orders[second])
            if shared.size:
                raise _fail(
                    store / order_file(second),
                    ORDER_KEY,
                    f"indices disjoint from {order_file(first)}",
                    f"{shared.size} shared, e.g. {int(shared[0])}",
                )
    return {split: int(order.size) for split, order in orders.items()}


def _check_background_videos(store: Path, dims: tuple, remember: Remember) -> int:
    present = [name for name in NOISY_FILES if (store / name).exists()]
    if not present:
        return 0
    if len(present) < len(NOISY_FILES):
        missing = sorted(set(NOISY_FILES) - set(present))
        raise PipelineError(
            f"{store}: expected all of {list(NOISY_FILES)} or none of them "
            f"(background videos of the weak setting), found {present}, missing {missing}"
        )
    m, _, _ = _check_features(store, AUDIO_NOISY, VISUAL_NOISY, None, dims, remember)
    path = store / LABELS_NOISY
    _check_labels(path, (m, N_CLASSES))
    with _read(path, FEATURE_KEY) as ds:
        events = np.flatnonzero(np.asarray(ds[()])[:, BACKGROUND] != 1)
        if events.size:
            found = f"an event in {events.size} row(s), first row {events[0]}"
            raise _fail(path, FEATURE_KEY, "every video labelled background (class 28)", found)
    return m


def validate_store(
    store: str | os.PathLike,
    audio_dim: int | None = None,
    map_shape: tuple | None = None,
    remember: Remember | None = None,
) -> StoreInfo:
    """Check a store directory against the data contract of docs/design.md §3.

    Checks keys, shapes, dtypes, finite feature values, one-hot labels over 29 classes,
    and split orders that are in range and pairwise disjoint. Feature files are read in
    blocks of rows, so the check needs little memory even for the 7.7 GB visual file, and
    only once per file version when ``remember`` keeps the files found finite (every
    other check reads headers or the small label and order files, and always runs).

    Args:
        store: the store directory.
        audio_dim: required audio feature size, or ``None`` to accept any (default).
        map_shape: required visual map shape ``(H, W, C)``, or ``None`` to accept any.
        remember: ``remember(path, fact, compute)`` returns ``compute()`` or the value
            recorded for this version of the file, e.g. the ``fact`` method of a
            :class:`~pipeline.data.ledger.FileLedger`; :obj:`None` reads every file
            (default).

    Raises:
        PipelineError: naming the file, key, expected and found value of the first problem.
    """
    store = Path(store)
    if not store.is_dir():
        raise PipelineError(f"{store}: store directory not found")
    remember = _compute if remember is None else remember
    dims = None if audio_dim is None and map_shape is None else (audio_dim, map_shape)
    if dims is not None and map_shape is None:
        dims = (audio_dim, (None, None, None))
    n, found_audio, found_map = _check_features(store, AUDIO, VISUAL, None, dims, remember)
    _check_labels(store / LABELS, (n, T, N_CLASSES))
    if (store / RIGHT_LABELS).exists():
        _check_labels(store / RIGHT_LABELS, (n, T, N_CLASSES))
    splits = _check_orders(store, n)
    n_background = _check_background_videos(store, (found_audio, found_map), remember)
    return StoreInfo(
        n_videos=n,
        audio_dim=found_audio,
        map_shape=found_map,
        splits=splits,
        n_background=n_background,
        has_right_labels=(store / RIGHT_LABELS).exists(),
    )


def write_array(path: str | os.PathLike, key: str, array: np.ndarray) -> None:
    """Write one array as an HDF5 file with a single dataset, atomically.

    Feature arrays with a video axis are chunked one video per chunk, so that a lazy
    reader fetches a video without touching its neighbours.

    Args:
        path: destination file.
        key: dataset name (``avadataset`` or ``order``).
        array: the data.
    """
    chunks = (1, *array.shape[1:]) if array.ndim >= 3 and array.shape[0] > 0 else None
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset(key, data=array, chunks=chunks)


def read_array(path: str | os.PathLike, key: str = FEATURE_KEY) -> np.ndarray:
    """Read a whole HDF5 dataset into memory (for the small files: labels and orders)."""
    with _read(Path(path), key) as ds:
        return ds[()]


def segment_labels(store: str | os.PathLike, name: str = LABELS) -> np.ndarray:
    """Class index per segment, ``(n, T)`` int64, from a one-hot label file."""
    return read_array(Path(store) / name).argmax(axis=-1).astype(np.int64)


def split_order(store: str | os.PathLike, split: str) -> np.ndarray:
    """Row indices of ``split`` into the main feature files."""
    return read_array(Path(store) / order_file(split), ORDER_KEY).astype(np.int64)
