"""The LLP sources: local directory, synthetic store and the release's download."""

import hashlib
import io
import shutil
import tarfile
import zipfile
from pathlib import Path

import gdown
import pytest

from pipeline.avvp import sources
from pipeline.avvp import store as llp
from pipeline.avvp.sources import build_llp_store, extract_archive, fetch_llp
from pipeline.avvp.synthetic import generate_llp
from pipeline.errors import PipelineError
from tests.data.test_download import fake_gdown, server  # noqa: F401 (fixture)


def _release_dir(store: Path, dest: Path) -> Path:
    """The release's layout: annotation files at the top, features under feats/."""
    dest.mkdir()
    for name in sources.ANNOTATION_FILES:
        shutil.copy(store / name, dest / name)
    for kind in llp.FEATURES:
        shutil.copytree(store / kind, dest / "feats" / kind)
    return dest


def _zip_features(store: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for kind in llp.FEATURES:
            for path in sorted((store / kind).iterdir()):
                archive.write(path, f"LLP/feats/{kind}/{path.name}")
    return buffer.getvalue()


def test_local_source_links_the_release_layout(tiny_llp: Path, tmp_path: Path):
    src = _release_dir(tiny_llp, tmp_path / "release")
    # the release's shapes are required for a real source; the tiny store has small ones.
    # The message names the file where it is, under feats/ (not src/vggish, which is absent)
    with pytest.raises(PipelineError, match=r"expected shape \(10, 128\)") as err:
        build_llp_store(tmp_path / "out", {"source": "local", "local_dir": str(src)})
    path = Path(str(err.value).split(": ")[0])
    assert path.parent == src / "feats" / "vggish" and path.is_file()
    assert not (tmp_path / "out").exists()


def test_feature_errors_name_the_file_where_it_is(tmp_path: Path):
    generate_llp(tmp_path / "gen", n_train=2, n_val=1, n_test=1)  # release dims by default
    src = _release_dir(tmp_path / "gen", tmp_path / "release")
    missing = next((src / "feats" / "res152").iterdir())
    missing.unlink()
    with pytest.raises(PipelineError) as err:
        build_llp_store(tmp_path / "out", {"source": "local", "local_dir": str(src)})
    assert str(err.value) == f"{missing}: feature file not found"
    # an annotation file's error still names the file in the source directory
    (src / llp.WEAK_FILES["val"]).write_text("filename\tevent_labels\nv\tUnicorn\n")
    with pytest.raises(PipelineError, match=rf"^{src / llp.WEAK_FILES['val']}.*Unicorn"):
        build_llp_store(tmp_path / "out", {"source": "local", "local_dir": str(src)})


def test_synthetic_source_is_valid_and_linked(tiny_llp: Path, tmp_path: Path):
    info = build_llp_store(tmp_path / "out", {"source": "synthetic"}, synthetic_dir=tiny_llp)
    assert info.splits == {"train": 24, "val": 6, "test": 8}
    assert (tmp_path / "out" / "vggish").is_symlink()
    train = tmp_path / "out" / llp.WEAK_FILES["train"]
    assert train.stat().st_ino == (tiny_llp / llp.WEAK_FILES["train"]).stat().st_ino


def test_local_source_names_a_missing_annotation_file(tiny_llp: Path, tmp_path: Path):
    src = _release_dir(tiny_llp, tmp_path / "release")
    (src / "AVVP_eval_visual.csv").unlink()
    with pytest.raises(
        PipelineError, match=r"missing LLP annotation file\(s\) \['AVVP_eval_visual.csv'\]"
    ):
        build_llp_store(tmp_path / "out", {"source": "local", "local_dir": str(src)})


def test_feature_root_finds_nested_directories(tiny_llp: Path, tmp_path: Path):
    for kind in llp.FEATURES:
        (tmp_path / "a" / "b" / kind).mkdir(parents=True)
    assert sources.feature_root(tmp_path) == tmp_path / "a" / "b"
    with pytest.raises(PipelineError, match="found none holding all three"):
        sources.feature_root(tmp_path / "a" / "b" / "vggish")


def test_zip_and_tar_archives_unpack(tiny_llp: Path, tmp_path: Path):
    zipped = tmp_path / "f.archive"
    zipped.write_bytes(_zip_features(tiny_llp))
    extract_archive(zipped, tmp_path / "z")
    assert sources.feature_root(tmp_path / "z") == tmp_path / "z" / "LLP" / "feats"
    tarred = tmp_path / "t.archive"
    with tarfile.open(tarred, "w:gz") as archive:
        archive.add(tiny_llp / "vggish", "feats/vggish")
    extract_archive(tarred, tmp_path / "t")
    assert sorted(p.name for p in (tmp_path / "t" / "feats" / "vggish").iterdir()) == sorted(
        p.name for p in (tiny_llp / "vggish").iterdir()
    )


def test_archive_members_outside_the_target_are_refused(tmp_path: Path):
    bad = tmp_path / "bad.archive"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("../escape.npy", b"x")
    with pytest.raises(PipelineError, match="refusing the member '../escape.npy'"):
        extract_archive(bad, tmp_path / "out")
    assert not (tmp_path / "escape.npy").exists() and not (tmp_path / "out").exists()
    bad.write_bytes(b"not an archive")
    with pytest.raises(PipelineError, match="expected a zip or tar archive"):
        extract_archive(bad, tmp_path / "out")


def test_release_download_checks_and_unpacks_once(
    server,  # noqa: F811 (the imported fixture)
    tiny_llp: Path,
    tmp_path: Path,
):
    archive = _zip_features(tiny_llp)
    overrides = {
        name: {"url": server.add(name, (tiny_llp / name).read_bytes())}
        for name in sources.ANNOTATION_FILES
    }
    overrides[sources.FEATURES_ARCHIVE] = {
        "url": server.add("feats.zip", archive),
        "sha256": hashlib.sha256(archive).hexdigest(),
    }
    root = fetch_llp(tmp_path / "dl", overrides, allow_insecure_localhost=True)
    assert root == tmp_path / "dl" / "feats" / "LLP" / "feats"
    stamp = (root / "vggish").stat().st_mtime_ns
    server.requests.clear()
    assert fetch_llp(tmp_path / "dl", overrides, allow_insecure_localhost=True) == root
    assert server.requests == [] and (root / "vggish").stat().st_mtime_ns == stamp
    overrides[sources.FEATURES_ARCHIVE]["sha256"] = "0" * 64
    with pytest.raises(PipelineError, match="checksum mismatch"):
        fetch_llp(tmp_path / "dl2", overrides, allow_insecure_localhost=True)


def test_llp_source_downloads_from_drive_and_validates(
    monkeypatch: pytest.MonkeyPatch, tiny_llp: Path, tmp_path: Path
):
    download = tmp_path / "dl"
    download.mkdir()
    for name in sources.ANNOTATION_FILES:  # present files are kept without a request
        shutil.copy(tiny_llp / name, download / name)
    calls: list[dict] = []
    monkeypatch.setattr(gdown, "download", fake_gdown(_zip_features(tiny_llp), calls))
    config = {"source": "llp", "download_dir": str(download), "sources": {}}
    with pytest.raises(PipelineError, match=r"expected shape \(10, 128\)"):  # tiny shapes
        build_llp_store(tmp_path / "out", config)
    assert calls[0]["id"] == sources.FEATURES_DRIVE_ID
    assert (download / "feats" / "LLP" / "feats" / "vggish").is_dir()


def test_local_source_with_the_release_shapes_passes(tmp_path: Path):
    generate_llp(tmp_path / "gen", n_train=2, n_val=1, n_test=1)  # release dims by default
    src = _release_dir(tmp_path / "gen", tmp_path / "release")
    info = build_llp_store(tmp_path / "out", {"source": "local", "local_dir": str(src)})
    assert info.dims == llp.FEATURES and info.splits == {"train": 2, "val": 1, "test": 1}
