"""The three data sources, one store: ``synthetic``, ``local`` and ``ave``.

:func:`build_store` fills a temporary directory beside the store, validates it the same way
for every source, and only then renames it into place: an interrupted or rejected build
leaves no half-written store. Official files of ``local`` and ``ave`` are hard-linked into
the store (symlinked across file systems), never copied: the real visual file is 7.7 GB.
"""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data import store
from pipeline.data.annotations import one_hot, parse_annotations
from pipeline.data.download import download_release, sha256_file, sources_from_params
from pipeline.data.synthetic import generate_synthetic
from pipeline.errors import PipelineError

SOURCES = ("synthetic", "local", "ave")
REQUIRED_FILES = (
    store.AUDIO,
    store.VISUAL,
    *(store.order_file(split) for split in store.SPLITS),
)
OPTIONAL_FILES = (*store.NOISY_FILES, store.RIGHT_LABELS)


def _link(source: Path, dest: Path) -> None:
    """Hard-link ``source`` to ``dest``, or symlink it where a hard link is impossible."""
    try:
        os.link(source, dest)
    except OSError:
        os.symlink(source.resolve(), dest)


def link_official_files(src: Path, dest: Path) -> None:
    """Link the official files of ``src`` into ``dest``; build ``labels.h5`` if needed.

    When ``labels.h5`` is absent but ``Annotations.txt`` is present, the labels are built
    from the annotations (class order of first appearance, end exclusive, an empty event
    all background).

    Args:
        src: a directory holding the official AVE files.
        dest: the (temporary) store directory.
    """
    if not src.is_dir():
        raise PipelineError(f"data.local_dir: directory not found: {src}")
    missing = [name for name in REQUIRED_FILES if not (src / name).is_file()]
    if missing:
        raise PipelineError(f"{src}: missing official file(s) {missing}")
    for name in (*REQUIRED_FILES, *OPTIONAL_FILES):
        if (src / name).is_file():
            _link(src / name, dest / name)
    if (src / store.LABELS).is_file():
        _link(src / store.LABELS, dest / store.LABELS)
    elif (src / store.ANNOTATIONS).is_file():
        _, labels = parse_annotations(src / store.ANNOTATIONS)
        store.write_array(dest / store.LABELS, store.FEATURE_KEY, one_hot(labels))
    else:
        raise PipelineError(f"{src}: missing {store.LABELS} (and no {store.ANNOTATIONS})")


def _fill(tmp: Path, data: dict[str, Any]) -> None:
    """Produce the raw files of the chosen source in ``tmp``."""
    if data["source"] == "synthetic":
        generate_synthetic(tmp, **data["synthetic"])
    elif data["source"] == "local":
        if not data.get("local_dir"):
            raise PipelineError("params.yaml: data.local_dir must name a directory (source local)")
        link_official_files(Path(data["local_dir"]).expanduser(), tmp)
    else:
        download_dir = Path(data["download_dir"])
        download_dir.mkdir(parents=True, exist_ok=True)
        download_release(download_dir, sources_from_params(data.get("sources") or {}))
        link_official_files(download_dir, tmp)


def _origin(data: dict[str, Any], out_dir: Path) -> Path:
    """The directory a user knows the store's files by (their source, not the temp dir)."""
    if data["source"] == "local":
        return Path(data["local_dir"]).expanduser()
    if data["source"] == "ave":
        return Path(data["download_dir"])
    return out_dir


def _validate(tmp: Path, data: dict[str, Any], out_dir: Path) -> store.StoreInfo:
    """Validate the built store; official sources must have the official dimensions."""
    official = data["source"] != "synthetic"
    try:
        return store.validate_store(
            tmp,
            audio_dim=store.OFFICIAL_AUDIO_DIM if official else None,
            map_shape=store.OFFICIAL_MAP if official else None,
        )
    except PipelineError as err:
        raise PipelineError(str(err).replace(str(tmp), str(_origin(data, out_dir)))) from None


def build_store(out_dir: str | os.PathLike, data: dict[str, Any]) -> store.StoreInfo:
    """Build and validate the store of ``data['source']`` at ``out_dir``, atomically.

    Args:
        out_dir: the store directory (``data/ave``); replaced only once the new one is valid.
        data: the ``data`` section of ``params.yaml`` (``source``, ``local_dir``,
            ``download_dir``, ``sources``, ``synthetic``).

    Returns:
        What the validation learned about the store.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _fill(tmp, data)
        info = _validate(tmp, data, out_dir)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return info


def store_summary(root: str | os.PathLike, source: str, info: store.StoreInfo) -> dict:
    """The content of ``metrics/download.json``: counts, foreground share, checksums."""
    root = Path(root)
    labels = store.segment_labels(root)  # (n, T)
    foreground = {
        split: float(np.mean(labels[store.split_order(root, split)] != store.BACKGROUND))
        for split in store.SPLITS
    }
    return {
        "source": source,
        "videos": info.splits,
        "background_videos": info.n_background,
        "foreground_fraction": foreground,
        "audio_dim": info.audio_dim,
        "map_shape": list(info.map_shape),
        "sha256": {p.name: sha256_file(p) for p in sorted(root.iterdir()) if p.is_file()},
    }
