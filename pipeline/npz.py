"""Atomic ``.npz`` writing and validated reading (``allow_pickle=False``) of index files.

A malformed file raises :class:`PipelineError` naming the file, the key, what was expected
and what was found.
"""

import os
import zipfile
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError
from pipeline.io import atomic_path

# dtype kinds accepted per expected kind: integers, booleans, unicode strings, floats
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)
_KIND_TEXT = {
    "i": "an integer dtype",
    "b": "a boolean dtype",
    "U": "a unicode string dtype",
    "f": "a floating-point dtype",
}


def fail(path: Path, key: str, expected: str, found: str) -> PipelineError:
    """The error for a malformed ``key`` of the ``.npz`` file ``path``."""
    return PipelineError(f"{path} [key '{key}']: expected {expected}, found {found}")


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` as an uncompressed ``.npz``, atomically.

    Args:
        path: destination file (its name is kept as given, no ``.npz`` is appended).
        arrays: key → array; object arrays are refused (they would need pickle).
    """
    for key, value in arrays.items():
        if np.asarray(value).dtype.kind == "O":
            raise PipelineError(f"{path} [key '{key}']: refusing to save an object array")
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def _read_key(path: Path, npz: np.lib.npyio.NpzFile, key: str, ndim: int, kind: str):
    if key not in npz.files:
        raise fail(path, key, "the key to be present", f"keys {sorted(npz.files)}")
    try:
        value = npz[key]
    except _READ_ERRORS as err:  # object arrays need pickle, which is refused
        raise fail(path, key, "a plain array (no pickle)", f"an unreadable array ({err})") from None
    if value.ndim != ndim:
        raise fail(path, key, f"{ndim} dimension(s)", f"shape {value.shape}")
    if value.dtype.kind != kind and not (kind == "i" and value.dtype.kind == "u"):
        raise fail(path, key, _KIND_TEXT[kind], str(value.dtype))
    return value.astype(np.int64) if kind == "i" else value


def load_npz(path: str | os.PathLike, spec: dict[str, tuple[int, str]]) -> dict[str, np.ndarray]:
    """Read the keys of ``spec`` from the ``.npz`` file ``path``, checking rank and dtype.

    Args:
        path: the file.
        spec: key → ``(ndim, kind)`` with kind ``"i"`` (integers, returned as int64),
            ``"b"`` (booleans), ``"U"`` (unicode strings) or ``"f"`` (floats).

    Raises:
        PipelineError: a missing or unreadable file, a missing key, a wrong rank or dtype.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: file not found")
    try:
        npz = np.load(path, allow_pickle=False)
    except _READ_ERRORS as err:
        found = f"an unreadable file ({err})"
        raise PipelineError(f"{path}: expected an .npz archive, found {found}") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise PipelineError(f"{path}: expected an .npz archive, found a single .npy array")
    with npz:
        return {key: _read_key(path, npz, key, *want) for key, want in spec.items()}
