"""The data sources, one store: ``synthetic``, ``local``, ``ave`` and ``videos``.

:func:`build_store` fills a temporary directory beside the store, validates it the same way
for every source, and only then renames it into place: an interrupted or rejected build
leaves no half-written store. The files are hard-linked into the store (symlinked across
file systems), never copied: the real visual file is 7.7 GB. They come from the user's
directory (``local``), the download directory (``ave``), or the synthetic store that the
synthesize stage generated (``synthetic``, DVC-cached, so that a queued experiment's fresh
workspace restores it by link instead of generating it again).

Reading a file is what costs: validation and checksums go through a
:class:`~pipeline.data.ledger.FileLedger`, so that each file version is read once, not
once per run or per workspace. ``videos`` extracts features from raw videos first
(:mod:`pipeline.data.videos`) into a temporary store.
"""

import os
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data import store, videos
from pipeline.data.annotations import one_hot, parse_annotations
from pipeline.data.download import download_release, sources_from_params
from pipeline.data.ledger import FileLedger
from pipeline.errors import PipelineError
from pipeline.fetch import sha256_file
from pipeline.io import atomic_dir

SOURCES = ("synthetic", "local", "ave", "videos")
REQUIRED_FILES = (
    store.AUDIO,
    store.VISUAL,
    *(store.order_file(split) for split in store.SPLITS),
)
OPTIONAL_FILES = (*store.NOISY_FILES, store.RIGHT_LABELS, store.ANNOTATIONS)


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


def _fill(tmp: Path, data: dict[str, Any], origin: Path, ledger: FileLedger) -> None:
    """Link the files of the chosen source, found in ``origin``, into ``tmp``."""
    if data["source"] == "synthetic":
        if not (origin / store.AUDIO).is_file():
            raise PipelineError(
                f"{origin}: no synthetic store found (data.source is synthetic: "
                "run the synthesize stage first, e.g. `dvc repro`)"
            )
    elif data["source"] == "ave":
        sources = sources_from_params(data.get("sources") or {})
        download_release(origin, sources, ledger=ledger)
    elif data["source"] == "videos":
        videos.build_video_store(tmp, data)  # per-video feature cache under ``origin``
        return
    link_official_files(origin, tmp)


def _origin(data: dict[str, Any], synthetic_dir: str | os.PathLike | None) -> Path:
    """The directory the store's files are linked from (and that error messages name)."""
    if data["source"] == "local":
        if not data.get("local_dir"):
            raise PipelineError("params.yaml: data.local_dir must name a directory (source local)")
        return Path(data["local_dir"]).expanduser()
    if data["source"] in ("ave", "videos"):
        if not data.get("download_dir"):
            raise PipelineError("params.yaml: data.download_dir must name a directory")
        return Path(data["download_dir"]).expanduser()
    if synthetic_dir is None:
        raise PipelineError("data.source synthetic: no synthetic store directory given")
    return Path(synthetic_dir)


def _add_right_labels(tmp: Path, data: dict[str, Any]) -> None:
    """Link the corrected labels named by ``data.right_labels`` (C-AVE) into the store."""
    if not data.get("right_labels"):
        return
    path = Path(data["right_labels"]).expanduser()
    if not path.is_file():
        raise PipelineError(f"{path}: corrected labels not found (data.right_labels)")
    target = tmp / store.RIGHT_LABELS
    if target.exists():
        target.unlink()
    _link(path, target)


def _validate(tmp: Path, data: dict[str, Any], origin: Path, ledger: FileLedger) -> store.StoreInfo:
    """Validate the built store; official sources must have the official dimensions.

    A ``videos`` store must have those of its recipe (``data.features``).
    """
    audio_dim, map_shape = None, None
    if data["source"] in ("local", "ave"):
        audio_dim, map_shape = store.OFFICIAL_AUDIO_DIM, store.OFFICIAL_MAP
    elif data["source"] == "videos":
        audio_dim, map_shape = videos.store_dims(data)
    try:
        return store.validate_store(
            tmp, audio_dim=audio_dim, map_shape=map_shape, remember=ledger.fact
        )
    except PipelineError as err:
        message = str(err)
        if data.get("right_labels"):
            message = message.replace(str(tmp / store.RIGHT_LABELS), str(data["right_labels"]))
        raise PipelineError(message.replace(str(tmp), str(origin))) from None


def build_store(
    out_dir: str | os.PathLike,
    data: dict[str, Any],
    synthetic_dir: str | os.PathLike | None = None,
    ledger: FileLedger | None = None,
) -> store.StoreInfo:
    """Build and validate the store of ``data['source']`` at ``out_dir``, atomically.

    Args:
        out_dir: the store directory (``data/ave``); replaced only once the new one is valid.
        data: the ``data`` section of ``params.yaml`` (``source``, ``local_dir``,
            ``download_dir`` resolved, ``sources``, ``right_labels`` and the ``videos``
            source's keys).
        synthetic_dir: the synthetic store to link (source ``synthetic``; the synthesize
            stage's ``data/synthetic``). (default: :obj:`None`)
        ledger: remembers validated and hashed files by identity, so that an unchanged
            file is not read again. (default: a ledger of this call only)

    Returns:
        What the validation learned about the store.
    """
    out_dir = Path(out_dir)
    ledger = FileLedger() if ledger is None else ledger
    origin = _origin(data, synthetic_dir)
    with atomic_dir(out_dir) as tmp:
        _fill(tmp, data, origin, ledger)
        _add_right_labels(tmp, data)
        info = _validate(tmp, data, origin, ledger)
    return info


def store_summary(
    root: str | os.PathLike, source: str, info: store.StoreInfo, ledger: FileLedger | None = None
) -> dict:
    """The content of ``metrics/download.json``: counts, foreground share, checksums.

    Args:
        root: the store directory.
        source: the data source it came from.
        info: what :func:`build_store` learned about it.
        ledger: remembers each file's sha256 by identity, so that an unchanged file is
            not hashed again. (default: a ledger of this call only)
    """
    root = Path(root)
    ledger = FileLedger() if ledger is None else ledger
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
        "sha256": {
            p.name: ledger.fact(p, "sha256", lambda p=p: sha256_file(p))
            for p in sorted(root.iterdir())
            if p.is_file()
        },
    }
