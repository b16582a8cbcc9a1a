"""Tests for pipeline.data.download against a local HTTP server (no internet)."""

import functools
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import gdown
import pytest

from pipeline import fetch as fetch_module
from pipeline.config import paths
from pipeline.data import download, sources, store
from pipeline.data.download import DEFAULT_SOURCES, Source, download_release, sources_from_params
from pipeline.data.ledger import FileLedger
from pipeline.errors import PipelineError
from pipeline.fetch import check_url, download_drive, download_file
from stages import download as download_stage
from tests.data.test_sources import ANNOTATIONS, _official_dir

DATA = bytes(range(256)) * 40  # 10240 bytes
DATA_SHA = hashlib.sha256(DATA).hexdigest()


@dataclass
class FakeServer:
    """What the handler serves and how it misbehaves; records every request."""

    root: Path
    base_url: str = ""
    cut_after: dict[str, int] = field(default_factory=dict)  # first request only
    lie_extra: int = 0
    ignore_range: bool = False
    status: int | None = None
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    body_bytes: int = 0

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def add(self, name: str, data: bytes = DATA) -> str:
        (self.root / name).write_bytes(data)
        return self.url(name)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.0 handler with byte-range support and injectable faults."""

    fake: FakeServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        fake, name = self.fake, self.path.lstrip("/")
        range_header = self.headers.get("Range")
        fake.requests.append((name, range_header))
        path = fake.root / name
        if fake.status is not None or not path.is_file():
            self.send_error(fake.status or 404)
            return
        data = path.read_bytes()
        start = 0
        if range_header and not fake.ignore_range:
            start = int(range_header.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return
            headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
            self._send(206, data[start:], headers)
        else:
            self._send(200, data, {})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) + self.fake.lie_extra * bool(body)))
        self.end_headers()
        cut = self.fake.cut_after.pop(self.path.lstrip("/"), None)
        body = body if cut is None else body[:cut]
        self.fake.body_bytes += len(body)  # counted before sending: the client may finish first
        self.wfile.write(body)


@pytest.fixture(autouse=True)
def _no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_module, "RETRY_DELAY_S", 0.0)


@pytest.fixture
def server(tmp_path: Path):
    root = tmp_path / "served"
    root.mkdir()
    fake = FakeServer(root)
    handler = type("Handler", (_Handler,), {"fake": fake})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    fake.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield fake
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def fetch(url: str, dest: Path, **kwargs) -> str:
    return download_file(url, dest, allow_insecure_localhost=True, timeout=5, **kwargs)


def part_of(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def test_download_file_returns_digest_and_leaves_no_part(server: FakeServer, tmp_path: Path):
    dest = tmp_path / "out" / "labels.h5"
    digest = fetch(server.add("labels.h5"), dest, sha256=DATA_SHA, size=len(DATA))
    assert digest == DATA_SHA
    assert dest.read_bytes() == DATA
    assert not part_of(dest).exists()
    assert server.requests == [("labels.h5", None)]


def test_cut_connection_resumes_with_range(server: FakeServer, tmp_path: Path):
    url = server.add("f.h5")
    server.cut_after["f.h5"] = 3000
    dest = tmp_path / "f.h5"
    assert fetch(url, dest, chunk_size=512) == DATA_SHA
    assert dest.read_bytes() == DATA
    assert server.requests == [("f.h5", None), ("f.h5", "bytes=3000-")]
    assert server.body_bytes == len(DATA)


def test_resumes_from_existing_part(server: FakeServer, tmp_path: Path):
    url = server.add("f.h5")
    dest = tmp_path / "f.h5"
    part_of(dest).write_bytes(DATA[:4096])
    fetch(url, dest)
    assert dest.read_bytes() == DATA
    assert server.requests == [("f.h5", "bytes=4096-")]
    assert server.body_bytes == len(DATA) - 4096


def test_server_ignoring_range_restarts_from_zero(server: FakeServer, tmp_path: Path):
    url = server.add("f.h5")
    server.ignore_range = True
    dest = tmp_path / "f.h5"
    part_of(dest).write_bytes(b"garbage that must not be kept")
    fetch(url, dest, sha256=DATA_SHA)
    assert dest.read_bytes() == DATA
    assert server.requests == [("f.h5", "bytes=29-")]


def test_complete_part_answered_416_is_published(server: FakeServer, tmp_path: Path):
    url = server.add("f.h5")
    dest = tmp_path / "f.h5"
    part_of(dest).write_bytes(DATA)
    assert fetch(url, dest) == DATA_SHA
    assert dest.read_bytes() == DATA
    assert server.body_bytes == 0


def test_oversized_part_answered_416_restarts(server: FakeServer, tmp_path: Path):
    url = server.add("f.h5")
    dest = tmp_path / "f.h5"
    part_of(dest).write_bytes(DATA + b"extra")
    fetch(url, dest)
    assert dest.read_bytes() == DATA
    assert server.requests == [("f.h5", f"bytes={len(DATA) + 5}-"), ("f.h5", None)]


def test_server_lying_about_length_fails(server: FakeServer, tmp_path: Path):
    url = server.add("f.h5")
    server.lie_extra = 100
    dest = tmp_path / "f.h5"
    with pytest.raises(PipelineError, match=f"expected {len(DATA) + 100} bytes"):
        fetch(url, dest, retries=2)
    assert not dest.exists()
    assert not part_of(dest).exists()


def test_truncated_body_fails_when_retries_run_out(server: FakeServer, tmp_path: Path):
    url = server.add("f.h5")
    server.cut_after["f.h5"] = 1000
    dest = tmp_path / "f.h5"
    with pytest.raises(PipelineError, match="failed after 1 attempt"):
        fetch(url, dest, retries=0)
    assert not dest.exists()
    assert part_of(dest).read_bytes() == DATA[:1000]  # kept for the next run


def test_size_mismatch_with_expected_size_fails(server: FakeServer, tmp_path: Path):
    url = server.add("f.h5")
    dest = tmp_path / "f.h5"
    with pytest.raises(PipelineError, match=f"expected {len(DATA) + 1} bytes"):
        fetch(url, dest, size=len(DATA) + 1)
    assert not dest.exists()


@pytest.mark.parametrize(("status", "retries", "requests"), [(404, 3, 1), (500, 1, 2)])
def test_http_error_status(
    server: FakeServer, tmp_path: Path, status: int, retries: int, requests: int
):
    url = server.add("f.h5")
    server.status = status
    dest = tmp_path / "f.h5"
    with pytest.raises(PipelineError, match=str(status)) as err:
        fetch(url, dest, retries=retries)
    assert url in str(err.value)
    assert len(server.requests) == requests
    assert not dest.exists()


def test_checksum_mismatch_deletes_part(server: FakeServer, tmp_path: Path):
    url = server.add("f.h5")
    dest = tmp_path / "f.h5"
    wrong = "0" * 64
    with pytest.raises(PipelineError, match="checksum mismatch") as err:
        fetch(url, dest, sha256=wrong)
    assert "f.h5" in str(err.value)
    assert wrong in str(err.value) and DATA_SHA in str(err.value)
    assert not dest.exists()
    assert not part_of(dest).exists()


def test_https_is_required(tmp_path: Path):
    with pytest.raises(PipelineError, match="https"):
        download_file("http://example.com/labels.h5", tmp_path / "x")
    with pytest.raises(PipelineError, match="https"):
        check_url("http://localhost:8000/x")
    with pytest.raises(PipelineError, match="https"):
        check_url("http://example.com/x", allow_insecure_localhost=True)
    check_url("http://127.0.0.1:8000/x", allow_insecure_localhost=True)
    check_url("https://example.com/x")
    assert not (tmp_path / "x").exists()


def test_sources_from_params_defaults():
    assert sources_from_params(None) == DEFAULT_SOURCES
    assert DEFAULT_SOURCES["audio_feature.h5"].drive_id == "1F6p4BAOY-i0fDXUOhG7xHuw_fnO5exBS"
    assert DEFAULT_SOURCES["labels.h5"].url == (
        "https://raw.githubusercontent.com/YapengTian/AVE-ECCV18/master/data/labels.h5"
    )


def test_sources_from_params_merges_overrides():
    sha = "ab" * 32
    sources = sources_from_params(
        {
            "labels.h5": {"sha256": sha},
            "audio_feature.h5": {"url": "https://mirror.example/a.h5", "size": 7},
            "extra.txt": {"url": "https://mirror.example/extra.txt"},
        }
    )
    assert sources["labels.h5"] == Source(
        "labels.h5", url=DEFAULT_SOURCES["labels.h5"].url, sha256=sha
    )
    assert sources["audio_feature.h5"] == Source(
        "audio_feature.h5", url="https://mirror.example/a.h5", size=7
    )
    assert sources["extra.txt"].url == "https://mirror.example/extra.txt"
    assert sources["visual_feature.h5"] == DEFAULT_SOURCES["visual_feature.h5"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"labels.h5": {"checksum": "x"}}, "labels.h5.*unknown field.*checksum"),
        ({"mystery.h5": {"sha256": "ab" * 32}}, "mystery.h5.*not a file of the release"),
        ({"labels.h5": {"url": "https://a/b", "drive_id": "x"}}, "exactly one of"),
        ({"labels.h5": {"sha256": "XYZ"}}, "labels.h5.*sha256"),
        ({"labels.h5": {"url": "http://example.com/labels.h5"}}, "https"),
        ({"labels.h5": "https://a/b"}, "labels.h5.*expected a mapping"),
        ({"../evil": {"url": "https://a/b"}}, "plain file name"),
    ],
)
def test_sources_from_params_errors(overrides: dict, message: str):
    with pytest.raises(PipelineError, match=message):
        sources_from_params(overrides)


def test_download_release_skips_present_file_with_matching_checksum(
    server: FakeServer, tmp_path: Path
):
    dest_dir = tmp_path / "ave"
    dest_dir.mkdir()
    (dest_dir / "labels.h5").write_bytes(DATA)
    (dest_dir / "stale.h5").write_bytes(b"stale")
    other = b"other file"
    sources = {
        "labels.h5": Source("labels.h5", url=server.add("labels.h5"), sha256=DATA_SHA),
        "stale.h5": Source("stale.h5", url=server.add("stale.h5"), sha256=DATA_SHA),
        "new.txt": Source("new.txt", url=server.add("new.txt", other)),
    }
    digests = download_release(dest_dir, sources, allow_insecure_localhost=True)
    assert digests == {
        "labels.h5": DATA_SHA,
        "stale.h5": DATA_SHA,
        "new.txt": hashlib.sha256(other).hexdigest(),
    }
    assert [name for name, _ in server.requests] == ["stale.h5", "new.txt"]
    assert (dest_dir / "stale.h5").read_bytes() == DATA


def test_download_release_keeps_present_file_without_checksum(tmp_path: Path):
    (tmp_path / "labels.h5").write_bytes(DATA)
    sources = {"labels.h5": Source("labels.h5", url="https://unreachable.invalid/labels.h5")}
    assert download_release(tmp_path, sources) == {"labels.h5": DATA_SHA}


def test_download_release_rejects_http_before_fetching(server: FakeServer, tmp_path: Path):
    sources = {"f.h5": Source("f.h5", url=server.add("f.h5"))}
    with pytest.raises(PipelineError, match="https"):
        download_release(tmp_path, sources)
    assert server.requests == []


def fake_gdown(content: bytes, calls: list[dict]):
    def fake_download(**kwargs) -> str:
        calls.append(kwargs)
        Path(kwargs["output"]).write_bytes(content)
        return kwargs["output"]

    return fake_download


def test_download_drive_checks_and_renames(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    calls: list[dict] = []
    monkeypatch.setattr(gdown, "download", fake_gdown(DATA, calls))
    dest = tmp_path / "audio_feature.h5"
    assert download_drive("some-id", dest, sha256=DATA_SHA) == DATA_SHA
    assert dest.read_bytes() == DATA
    assert calls[0]["id"] == "some-id" and calls[0]["resume"] is True
    assert calls[0]["output"] == str(part_of(dest))
    assert not part_of(dest).exists()


def test_download_drive_checksum_mismatch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(gdown, "download", fake_gdown(b"quota exceeded page", []))
    dest = tmp_path / "audio_feature.h5"
    with pytest.raises(PipelineError, match="audio_feature.h5: checksum mismatch"):
        download_drive("some-id", dest, sha256=DATA_SHA)
    assert not dest.exists()
    assert not part_of(dest).exists()


def test_download_drive_failure_is_a_pipeline_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    def refuse(**kwargs):
        raise gdown.exceptions.FileURLRetrievalError("Too many users have viewed this file")

    monkeypatch.setattr(gdown, "download", refuse)
    with pytest.raises(PipelineError, match="some-id.*Too many users"):
        download_drive("some-id", tmp_path / "audio_feature.h5")


# ------------------------------------------------ downloads shared by every workspace


def test_present_files_are_hashed_once_per_version(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "labels.h5").write_bytes(DATA)
    table = {"labels.h5": Source("labels.h5", url=server.add("labels.h5"), sha256=DATA_SHA)}
    ledger = FileLedger(tmp_path / "files.sqlite")
    hashed = []
    original = download.sha256_file
    monkeypatch.setattr(download, "sha256_file", lambda path: hashed.append(path) or original(path))
    for _ in range(2):
        assert download_release(tmp_path, table, True, ledger) == {"labels.h5": DATA_SHA}
    assert hashed == [tmp_path / "labels.h5"]
    assert server.requests == []


def _release(server: FakeServer, root: Path) -> dict:
    """The official files served by ``server``, as a ``data.sources`` table of overrides."""
    release = _official_dir(root)
    (release / store.ANNOTATIONS).write_text(ANNOTATIONS)
    assert sorted(p.name for p in release.iterdir()) == sorted(DEFAULT_SOURCES)
    return {p.name: {"url": server.add(p.name, p.read_bytes())} for p in release.iterdir()}


def test_queued_experiments_reuse_the_downloads_in_the_user_cache(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    table = _release(server, tmp_path / "release")
    insecure = {"allow_insecure_localhost": True}  # http on localhost, for the test server
    monkeypatch.setattr(
        sources, "download_release", functools.partial(download_release, **insecure)
    )
    monkeypatch.setattr(
        sources, "sources_from_params", functools.partial(sources_from_params, **insecure)
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user cache"))
    cache = paths.default_download_dir()
    assert cache == tmp_path / "user cache" / "avel" / "ave"
    # an earlier experiment was interrupted while downloading the visual file
    visual = (server.root / store.VISUAL).read_bytes()
    cache.mkdir(parents=True)
    (cache / f"{store.VISUAL}.part").write_bytes(visual[:5000])
    data = {"source": "ave", "local_dir": None, "download_dir": None, "sources": table}
    metrics = []
    for workspace in (tmp_path / "first", tmp_path / "second"):  # two fresh workspaces
        workspace.mkdir()
        monkeypatch.chdir(workspace)
        download_stage.main({"data": {**data, "synthetic": {}}})
        metrics.append(json.loads(paths.DOWNLOAD_METRICS.read_text()))
    # the first workspace resumed the partial file and fetched the rest; the second nothing
    assert sorted(server.requests) == sorted(
        (name, "bytes=5000-" if name == store.VISUAL else None) for name in table
    )
    assert metrics[0] == metrics[1]
    assert metrics[0]["sha256"][store.VISUAL] == hashlib.sha256(visual).hexdigest()
    for path in paths.STORE.iterdir():
        assert path.stat().st_ino == (cache / path.name).stat().st_ino, path  # linked
