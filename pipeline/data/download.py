"""Download the official AVE-ECCV18 release (features, labels, splits, annotations).

The release table (:data:`DEFAULT_SOURCES`: where each file lives and what it hashes to)
and its overrides from ``data.sources``; each file is fetched with
:mod:`pipeline.fetch` (resumable, checked, never half-written).

:func:`download_release` can fill a directory shared by several workspaces (the default
download directory is in the user's cache, so that queued DVC experiments, each in a fresh
workspace, reuse finished and partial downloads): each file is fetched under a lock file
beside it, and a file already there is hashed once per version (a
:class:`~pipeline.data.ledger.FileLedger` remembers its sha256 by file identity).
"""

from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from pipeline.data.ledger import FileLedger
from pipeline.errors import PipelineError
from pipeline.fetch import check_url, download_drive, download_file, sha256_file

GITHUB_DATA_URL = "https://raw.githubusercontent.com/YapengTian/AVE-ECCV18/master/data"


_OVERRIDE_FIELDS = frozenset({"url", "drive_id", "sha256", "size"})


@dataclass(frozen=True)
class Source:
    """Where one file of the release comes from, and what it must hash to.

    Exactly one of ``url`` and ``drive_id`` is set.

    Args:
        filename: the file's name inside the destination directory (no path parts).
        url: an HTTPS URL to fetch it from. (default: :obj:`None`)
        drive_id: a Google Drive file id to fetch it from. (default: :obj:`None`)
        sha256: the expected lowercase hex sha256; :obj:`None` skips the check.
            (default: :obj:`None`)
        size: the expected size in bytes; :obj:`None` trusts the server.
            (default: :obj:`None`)
    """

    filename: str
    url: str | None = None
    drive_id: str | None = None
    sha256: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        name = self.filename
        if not isinstance(name, str) or name in {"", ".", ".."} or "/" in name or "\\" in name:
            raise PipelineError(f"source {name!r}: the filename must be a plain file name")
        if (self.url is None) == (self.drive_id is None):
            raise PipelineError(f"source {name!r}: give exactly one of 'url' and 'drive_id'")
        for field in ("url", "drive_id"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, str) or not value):
                raise PipelineError(f"source {name!r}: {field} must be a non-empty string")
        if self.sha256 is not None and not _is_sha256(self.sha256):
            raise PipelineError(
                f"source {name!r}: sha256 must be 64 lowercase hex digits, got {self.sha256!r}"
            )
        if self.size is not None and (
            isinstance(self.size, bool) or not isinstance(self.size, int) or self.size <= 0
        ):
            raise PipelineError(f"source {name!r}: size must be a positive integer")


def _is_sha256(value: object) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


_DRIVE_IDS = {
    "audio_feature.h5": "1F6p4BAOY-i0fDXUOhG7xHuw_fnO5exBS",
    "visual_feature.h5": "1hQwbhutA3fQturduRnHMyfRqdrRHgmC9",
    "visual_feature_noisy.h5": "1I3OtOHJ8G1-v5G2dHIGCfevHQPn-QyLh",
}
_GITHUB_FILES = (
    "labels.h5",
    "train_order.h5",
    "val_order.h5",
    "test_order.h5",
    "Annotations.txt",
    "audio_feature_noisy.h5",
    "labels_noisy.h5",
)

#: The AVE-ECCV18 release, by file name. Checksums are not published, hence ``None``.
DEFAULT_SOURCES: dict[str, Source] = {
    **{name: Source(name, drive_id=drive_id) for name, drive_id in _DRIVE_IDS.items()},
    **{name: Source(name, url=f"{GITHUB_DATA_URL}/{name}") for name in _GITHUB_FILES},
}


def sources_from_params(
    overrides: dict | None,
    allow_insecure_localhost: bool = False,
    defaults: dict[str, Source] | None = None,
) -> dict[str, Source]:
    """Merge per-file overrides from params over :data:`DEFAULT_SOURCES` (or ``defaults``).

    An override is ``{filename: {"url" | "drive_id": ..., "sha256": ..., "size": ...}}``.
    Giving ``url`` or ``drive_id`` replaces the default location; fields left out keep
    their default. A file that is not part of the release needs a ``url`` or
    ``drive_id``.

    Args:
        overrides: the overrides, or :obj:`None` for the defaults alone.
        allow_insecure_localhost: accept ``http://`` URLs on localhost (for tests).
            (default: :obj:`False`)
        defaults: the release's table, e.g. the LLP one of :mod:`pipeline.avvp.sources`.
            (default: :data:`DEFAULT_SOURCES`, the AVE release)

    Returns:
        The sources by file name.
    """
    defaults = DEFAULT_SOURCES if defaults is None else defaults
    sources = dict(defaults)
    for filename, fields in (overrides or {}).items():
        sources[filename] = _merge_source(sources.get(filename), filename, fields, defaults)
    for source in sources.values():
        if source.url is not None:
            check_url(source.url, allow_insecure_localhost)
    return sources


def _merge_source(
    base: Source | None, filename: str, fields: object, defaults: dict[str, Source]
) -> Source:
    where = f"source override {filename!r}"
    if not isinstance(fields, dict):
        raise PipelineError(f"{where}: expected a mapping, got {type(fields).__name__}")
    unknown = sorted(set(fields) - _OVERRIDE_FIELDS)
    if unknown:
        raise PipelineError(
            f"{where}: unknown field(s) {unknown}; allowed: {sorted(_OVERRIDE_FIELDS)}"
        )
    relocated = "url" in fields or "drive_id" in fields
    if base is None and not relocated:
        raise PipelineError(
            f"{where}: not a file of the release ({sorted(defaults)}); "
            "a new file needs a 'url' or 'drive_id'"
        )
    merged = {} if base is None else {key: getattr(base, key) for key in _OVERRIDE_FIELDS}
    if relocated:
        merged |= {"url": None, "drive_id": None}
    return Source(filename, **(merged | fields))


def download_release(
    dest_dir: Path,
    sources: dict[str, Source],
    allow_insecure_localhost: bool = False,
    ledger: FileLedger | None = None,
) -> dict[str, str]:
    """Fetch every source into ``dest_dir``; return ``{filename: sha256}``.

    A file already in ``dest_dir`` is kept, without a request, when its sha256 matches
    the known one or when no checksum is known (and its size matches, if known);
    otherwise it is downloaded again. Each file is fetched holding the lock file
    ``.<filename>.lock`` beside it, so that concurrent runs sharing ``dest_dir`` wait for
    each other instead of writing the same ``.part`` file.

    Args:
        dest_dir: the directory to fill; created if missing.
        sources: the files to fetch, e.g. from :func:`sources_from_params`.
        allow_insecure_localhost: accept ``http://`` URLs on localhost (for tests).
            (default: :obj:`False`)
        ledger: remembers the sha256 of each file by file identity, so that a file
            already there is not hashed again. (default: a ledger of this call only)
    """
    dest_dir = Path(dest_dir)
    for source in sources.values():
        if source.url is not None:
            check_url(source.url, allow_insecure_localhost)
    dest_dir.mkdir(parents=True, exist_ok=True)
    ledger = FileLedger() if ledger is None else ledger
    digests = {}
    for source in sources.values():
        dest = dest_dir / source.filename
        with FileLock(dest_dir / f".{source.filename}.lock"):
            digests[source.filename] = _fetch_source(source, dest, allow_insecure_localhost, ledger)
    return digests


def _fetch_source(
    source: Source, dest: Path, allow_insecure_localhost: bool, ledger: FileLedger
) -> str:
    if dest.is_file() and (source.size is None or dest.stat().st_size == source.size):
        digest = ledger.fact(dest, "sha256", lambda: sha256_file(dest))
        if source.sha256 is None or digest == source.sha256:
            return digest
    if source.drive_id is not None:
        digest = download_drive(source.drive_id, dest, source.sha256, source.size)
    else:
        digest = download_file(
            source.url,
            dest,
            source.sha256,
            source.size,
            allow_insecure_localhost=allow_insecure_localhost,
        )
    ledger.put(dest, "sha256", digest)  # a rename keeps the inode, size and mtime hashed
    return digest
