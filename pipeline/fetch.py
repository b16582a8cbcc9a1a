"""HTTPS and Google Drive downloads that never leave a half-written file, and sha256.

Every file is fetched into ``<name>.part`` beside its destination and renamed onto the
final name only after its size and (when known) sha256 check out, so a destination file
is never half-written. An interrupted HTTPS download resumes from its ``.part`` file
with an HTTP ``Range`` request, retrying transient failures; Google Drive files go
through :mod:`gdown`, which handles Drive's large-file confirmation page and resumes its
own partial files. Only ``https`` URLs are fetched (``http`` to localhost in tests).
Used by the AVE release table (:mod:`pipeline.data.download`) and the feature networks'
weights (:mod:`pipeline.features.weights`).
"""

import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import gdown
import requests
import urllib3
from tqdm import tqdm

from pipeline.errors import PipelineError

#: Seconds to wait before the first retry; doubled for each further one.
RETRY_DELAY_S = 1.0


_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


_HASH_BLOCK = 1 << 20


def check_url(url: str, allow_insecure_localhost: bool = False) -> None:
    """Raise :class:`PipelineError` unless ``url`` is an ``https://`` URL.

    Args:
        url: the URL to check.
        allow_insecure_localhost: also accept ``http://127.0.0.1`` and
            ``http://localhost`` (for tests). (default: :obj:`False`)
    """
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if allow_insecure_localhost and parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS:
        return
    raise PipelineError(f"{url!r}: only https:// URLs are allowed for downloads")


class _TransientError(Exception):
    """A failure worth retrying: the next attempt resumes from the ``.part`` file."""


_RETRYABLE = (
    requests.ConnectionError,
    requests.Timeout,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    _TransientError,
)


def download_file(
    url: str,
    dest: Path,
    sha256: str | None = None,
    size: int | None = None,
    chunk_size: int = 1 << 20,
    timeout: float = 60,
    retries: int = 3,
    *,
    allow_insecure_localhost: bool = False,
) -> str:
    """Download ``url`` to ``dest``, resuming and verifying; return the file's sha256.

    The bytes go to ``<dest>.part``; an existing ``.part`` is resumed with a
    ``Range: bytes=N-`` request (a server answering ``200`` restarts it from zero).
    Cut connections and ``5xx``/``429`` answers are retried with exponential backoff,
    resuming each time. The ``.part`` file is renamed onto ``dest`` only once its size
    matches the announced (or given) size and its sha256 the expected one.

    Args:
        url: the ``https://`` URL to fetch.
        dest: the final path.
        sha256: the expected lowercase hex sha256; :obj:`None` skips the check.
            (default: :obj:`None`)
        size: the expected size in bytes; :obj:`None` trusts the server's.
            (default: :obj:`None`)
        chunk_size: bytes read per chunk. (default: :obj:`1 << 20`)
        timeout: seconds to wait for the server to connect or send. (default: :obj:`60`)
        retries: further attempts after a transient failure. (default: :obj:`3`)
        allow_insecure_localhost: accept ``http://`` URLs on localhost (for tests).
            (default: :obj:`False`)

    Raises:
        PipelineError: on a non-https URL, an HTTP error status, a size or checksum
            mismatch (the ``.part`` file is deleted), or when retries run out (the
            ``.part`` file is kept for the next run to resume).
    """
    check_url(url, allow_insecure_localhost)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    transfer = _Transfer(url, _part_path(dest), size, chunk_size, timeout)
    for attempt in range(retries + 1):
        try:
            transfer.attempt()
            break
        except _RETRYABLE as err:
            if attempt == retries:
                raise PipelineError(
                    f"{url}: download failed after {retries + 1} attempt(s): {err}; "
                    f"rerun to resume from {transfer.part}"
                ) from err
            time.sleep(RETRY_DELAY_S * 2**attempt)
    return _publish(transfer.part, dest, sha256, transfer.size, url)


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


@dataclass
class _Transfer:
    """One file's HTTP download into its ``.part`` file, over one or more attempts.

    ``size`` is the expected total: the caller's, else the first one a server announces.
    It persists across attempts, so a server changing its story is caught.
    """

    url: str
    part: Path
    size: int | None
    chunk_size: int
    timeout: float

    def attempt(self) -> None:
        """Make one request that resumes ``part``; raise if it ends early."""
        offset = self.part.stat().st_size if self.part.exists() else 0
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        with requests.get(self.url, headers=headers, stream=True, timeout=self.timeout) as response:
            if urlsplit(response.url).scheme != urlsplit(self.url).scheme:
                raise PipelineError(f"{self.url}: redirected to another scheme: {response.url}")
            encoding = response.headers.get("Content-Encoding", "identity")
            if encoding != "identity":
                raise PipelineError(f"{self.url}: unexpected Content-Encoding {encoding!r}")
            start, announced = self._parse(response, offset)
            self._agree(announced)
            if start is not None:
                self._stream(response, start)

    def _parse(self, response: requests.Response, offset: int) -> tuple[int | None, int | None]:
        """Return (offset the body starts at, or None if ``part`` is complete; total size)."""
        status = response.status_code
        if status == 200:
            length = response.headers.get("Content-Length")
            return 0, int(length) if length and length.isdigit() else None
        if status == 206:
            start, total = _content_range(response)
            if start == offset:
                return start, total
            self.part.unlink(missing_ok=True)
            raise _TransientError(f"server resumed at byte {start}, not {offset}; restarting")
        if status == 416:
            _, total = _content_range(response)
            if offset and total == offset:
                return None, total
            self.part.unlink(missing_ok=True)
            raise _TransientError(f"server refused to resume at byte {offset}; restarting")
        if status == 429 or status >= 500:
            raise _TransientError(f"HTTP {status} {response.reason}")
        raise PipelineError(f"{self.url}: HTTP {status} {response.reason}")

    def _agree(self, announced: int | None) -> None:
        """Adopt the server's size, or fail (deleting ``part``) if it contradicts ours."""
        if self.size is None:
            self.size = announced
        elif announced is not None and announced != self.size:
            self.part.unlink(missing_ok=True)
            raise PipelineError(
                f"{self.url}: expected {self.size} bytes but the server reports {announced}"
            )

    def _stream(self, response: requests.Response, start: int) -> None:
        """Write the body to ``part`` from byte ``start``; raise if it ends early."""
        with (
            self.part.open("ab" if start else "wb") as file,
            _progress(self.part, start, self.size) as bar,
        ):
            # Raw bytes: decoding would drop what arrived before a cut instead of keeping it.
            for chunk in response.raw.stream(self.chunk_size, decode_content=False):
                file.write(chunk)
                bar.update(len(chunk))
            got = file.tell()
        if self.size is not None and got < self.size:
            raise _TransientError(f"connection closed after {got} of {self.size} bytes")


def _content_range(response: requests.Response) -> tuple[int | None, int | None]:
    """Parse ``Content-Range: bytes a-b/total`` or ``bytes */total`` into (a, total)."""
    unit, _, spec = response.headers.get("Content-Range", "").partition(" ")
    if unit != "bytes":
        return None, None
    span, _, total = spec.partition("/")
    first = span.partition("-")[0]
    return (
        int(first) if first.isdigit() else None,
        int(total) if total.isdigit() else None,
    )


def _progress(part: Path, start: int, total: int | None) -> tqdm:
    return tqdm(
        desc=part.name.removesuffix(".part"),
        total=total,
        initial=start,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=not _show_progress(),
    )


def _show_progress() -> bool:
    return not os.environ.get("CI") and sys.stderr.isatty()


def _publish(part: Path, dest: Path, sha256: str | None, size: int | None, origin: str) -> str:
    """Check ``part`` against the expected size and sha256, then rename it onto ``dest``."""
    got = part.stat().st_size
    if size is not None and got != size:
        part.unlink()
        raise PipelineError(f"{dest.name}: expected {size} bytes from {origin}, got {got}")
    digest = sha256_file(part)
    if sha256 is not None and digest != sha256.lower():
        part.unlink()
        raise PipelineError(
            f"{dest.name}: checksum mismatch for the download from {origin}: "
            f"expected sha256 {sha256}, found {digest}; the partial file was deleted"
        )
    os.replace(part, dest)
    return digest


def sha256_file(path: Path) -> str:
    """Return the lowercase hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_drive(
    drive_id: str, dest: Path, sha256: str | None = None, size: int | None = None
) -> str:
    """Download a Google Drive file to ``dest`` via :mod:`gdown`; return its sha256.

    gdown passes Drive's large-file confirmation and resumes its own partial files;
    its result lands in ``<dest>.part`` and is checked and renamed as in
    :func:`download_file`.

    Args:
        drive_id: the Google Drive file id.
        dest: the final path.
        sha256: the expected lowercase hex sha256; :obj:`None` skips the check.
            (default: :obj:`None`)
        size: the expected size in bytes; :obj:`None` skips the check.
            (default: :obj:`None`)

    Raises:
        PipelineError: when Drive refuses the file (e.g. its download quota is spent)
            or the result fails the size or checksum check.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(dest)
    try:
        gdown.download(
            id=drive_id,
            output=str(part),
            quiet=not _show_progress(),
            resume=True,
            retries=3,
            timeout=60,
        )
    except (gdown.exceptions.DownloadError, requests.RequestException) as err:
        raise PipelineError(
            f"{dest.name}: Google Drive download of id {drive_id} failed: {err}. "
            "Drive limits downloads per day; retry later or give the file a mirror "
            "'url' in the source overrides"
        ) from err
    return _publish(part, dest, sha256, size, f"Google Drive id {drive_id}")
