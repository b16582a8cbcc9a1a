"""The LLP data sources, one store: ``synthetic``, ``local`` and ``llp`` (the release).

:func:`build_llp_store` fills a temporary directory beside the store, validates it the same
way for every source (:func:`pipeline.avvp.store.validate_llp_store`; the release's shapes
for ``local`` and ``llp``), and only then renames it into place. The annotation files are
hard-linked and the three feature directories symlinked, never copied (the release's
features are about 14 GB).

* ``synthetic``: the store that :func:`pipeline.avvp.synthetic.generate_llp` wrote.
* ``local``: a directory holding the five annotation files and the feature directories
  ``vggish/``, ``res152/``, ``r2plus1d_18/``, either beside the files or under ``feats/``
  (the release's layout).
* ``llp``: the release, downloaded into ``download_dir`` with the resumable, checksummed
  machinery of :mod:`pipeline.data.download`: the annotation files from the reference
  repository, the features as one archive from Google Drive (zip or tar, recognised by
  content), which is unpacked once per archive version into ``download_dir/feats``
  (members that would land outside it are refused; tar members go through Python's
  ``data`` extraction filter). Checksums are not
  published; give them with ``sources`` overrides to have every file checked.
"""

import os
import tarfile
import zipfile
from pathlib import Path
from typing import Any

from pipeline.avvp import store as llp
from pipeline.data.download import Source, download_release, sources_from_params
from pipeline.data.ledger import FileLedger
from pipeline.errors import PipelineError
from pipeline.io import atomic_dir

SOURCES = ("synthetic", "local", "llp")
GITHUB_DATA_URL = "https://raw.githubusercontent.com/YapengTian/AVVP-ECCV20/master/data"
FEATURES_ARCHIVE = "llp_feats.archive"
FEATURES_DRIVE_ID = "10CeaI1G9uIyz5dKnd7XTeH9-qOehC7CL"  # the README's "feats" link
ANNOTATION_FILES = (*llp.WEAK_FILES.values(), *llp.DENSE_FILES.values())
EXTRACTED = "feats"
_MARKER = ".extracted-sha256"

#: The LLP release, by file name. Checksums are not published, hence ``None``.
DEFAULT_SOURCES: dict[str, Source] = {
    **{name: Source(name, url=f"{GITHUB_DATA_URL}/{name}") for name in ANNOTATION_FILES},
    FEATURES_ARCHIVE: Source(FEATURES_ARCHIVE, drive_id=FEATURES_DRIVE_ID),
}


def _link(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        os.symlink(source.resolve(), dest)


def feature_root(directory: Path) -> Path:
    """The directory under ``directory`` that holds the three feature directories.

    ``directory`` itself, ``directory/feats``, or the first directory found below it
    holding all three (an unpacked archive may nest them).
    """
    for candidate in (directory, directory / EXTRACTED):
        if all((candidate / kind).is_dir() for kind in llp.FEATURES):
            return candidate
    for root, dirs, _ in sorted(os.walk(directory)):
        if all(kind in dirs for kind in llp.FEATURES):
            return Path(root)
    raise PipelineError(
        f"{directory}: expected the feature directories {list(llp.FEATURES)} "
        "(beside the annotation files or under feats/), found none holding all three"
    )


def link_llp_files(src: Path, dest: Path, features: Path | None = None) -> Path:
    """Link the annotation files of ``src`` and the feature directories into ``dest``.

    Args:
        src: a directory holding the five annotation files.
        dest: the (temporary) store directory.
        features: where to look for the feature directories. (default: ``src``)

    Returns:
        The directory holding the three feature directories (:func:`feature_root`).
    """
    if not src.is_dir():
        raise PipelineError(f"llp.local_dir: directory not found: {src}")
    missing = [name for name in ANNOTATION_FILES if not (src / name).is_file()]
    if missing:
        raise PipelineError(f"{src}: missing LLP annotation file(s) {missing}")
    for name in ANNOTATION_FILES:
        _link(src / name, dest / name)
    root = feature_root(src if features is None else features)
    for kind in llp.FEATURES:
        os.symlink((root / kind).resolve(), dest / kind, target_is_directory=True)
    return root


def _source_paths(message: str, store: Path, src: Path, root: Path) -> str:
    """``message`` with the paths in the linked ``store`` replaced by the linked files' own:
    a feature file under ``root`` (e.g. ``src/feats``), an annotation file under ``src``."""
    for kind in llp.FEATURES:
        message = message.replace(str(store / kind), str(root / kind))
    return message.replace(str(store), str(src))


def _safe_members(archive: Path, names: list[str], target: Path) -> None:
    base = target.resolve()
    for name in names:
        if not (target / name).resolve().is_relative_to(base):
            raise PipelineError(f"{archive}: refusing the member {name!r} (outside the archive)")


def extract_archive(archive: Path, target: Path) -> None:
    """Unpack a zip or tar ``archive`` into ``target`` atomically, refusing escaping members.

    Raises:
        PipelineError: when the file is neither a zip nor a tar archive, or a member would
            land outside ``target``.
    """
    with atomic_dir(target) as tmp:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as handle:
                _safe_members(archive, handle.namelist(), tmp)
                handle.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as handle:
                _safe_members(archive, handle.getnames(), tmp)
                try:
                    handle.extractall(tmp, filter="data")
                except tarfile.FilterError as err:
                    raise PipelineError(f"{archive}: refusing a member: {err}") from None
        else:
            raise PipelineError(f"{archive}: expected a zip or tar archive of the features")


def fetch_llp(
    download_dir: Path,
    overrides: dict | None = None,
    ledger: FileLedger | None = None,
    allow_insecure_localhost: bool = False,
) -> Path:
    """Download the release into ``download_dir`` and unpack its features; return their root.

    The archive is unpacked again only when its sha256 changed (recorded beside the
    unpacked files).

    Args:
        download_dir: where the downloads go (resumed when interrupted).
        overrides: ``{file: {url | drive_id, sha256, size}}`` over :data:`DEFAULT_SOURCES`.
        ledger: remembers file hashes by identity. (default: one for this call)
        allow_insecure_localhost: accept ``http://`` on localhost (tests). (default: False)
    """
    download_dir = Path(download_dir)
    sources = sources_from_params(overrides, allow_insecure_localhost, DEFAULT_SOURCES)
    digests = download_release(download_dir, sources, allow_insecure_localhost, ledger)
    target, digest = download_dir / EXTRACTED, digests[FEATURES_ARCHIVE]
    marker = target / _MARKER
    if not (marker.is_file() and marker.read_text() == digest):
        extract_archive(download_dir / FEATURES_ARCHIVE, target)
        marker.write_text(digest)
    return feature_root(target)


def build_llp_store(
    out_dir: str | os.PathLike,
    config: dict[str, Any],
    synthetic_dir: str | os.PathLike | None = None,
    ledger: FileLedger | None = None,
) -> llp.LLPInfo:
    """Build and validate the LLP store of ``config['source']`` at ``out_dir``, atomically.

    Args:
        out_dir: the store directory; replaced only once the new one is valid.
        config: ``source`` (one of :data:`SOURCES`), ``local_dir``, ``download_dir`` and
            ``sources`` (download overrides).
        synthetic_dir: the synthetic store (source ``synthetic``). (default: :obj:`None`)
        ledger: remembers validated files by identity. (default: one for this call)
    """
    source = config["source"]
    if source not in SOURCES:
        raise PipelineError(f"avvp.source: expected one of {list(SOURCES)}, found {source!r}")
    ledger = FileLedger() if ledger is None else ledger
    if source == "synthetic":
        if synthetic_dir is None or not Path(synthetic_dir).is_dir():
            raise PipelineError(f"{synthetic_dir}: no synthetic LLP store (run avvp_synthesize)")
        src, features = Path(synthetic_dir), None
    elif source == "local":
        if not config.get("local_dir"):
            raise PipelineError("avvp.local_dir: must name a directory (source local)")
        src, features = Path(config["local_dir"]).expanduser(), None
    else:
        if not config.get("download_dir"):
            raise PipelineError("avvp.download_dir: must name a directory (source llp)")
        src = Path(config["download_dir"]).expanduser()
        features = fetch_llp(src, config.get("sources"), ledger)
    with atomic_dir(out_dir) as tmp:
        root = link_llp_files(src, tmp, features)
        try:
            info = llp.validate_llp_store(tmp, official=source != "synthetic", remember=ledger.fact)
        except PipelineError as err:
            raise PipelineError(_source_paths(str(err), tmp, src, root)) from None
    return info
