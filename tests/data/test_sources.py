"""Tests for pipeline.data.sources: building the store from the synthetic and local sources."""

import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.data import sources, store
from pipeline.data.annotations import class_names, one_hot
from pipeline.data.sources import build_store, link_official_files, sha256_file, store_summary
from pipeline.data.store import write_array
from pipeline.data.synthetic import generate_synthetic
from pipeline.errors import PipelineError

BG = store.BACKGROUND
T = store.T
N_OFFICIAL = 6
N_NOISY = 2
# Six videos in store row order; class order of first appearance: Dog 0, Cat 1, Bird 2.
ANNOTATIONS = """\
Category&YouTubeID&Quality&Start&End
Dog&v0&good&0&10
Cat&v1&good&2&6
Dog&v2&good&0&0
Bird&v3&good&5&10
Cat&v4&good&0&10
Bird&v5&good&1&3
"""
OFFICIAL_FILES = (
    store.AUDIO,
    store.VISUAL,
    store.LABELS,
    *(store.order_file(split) for split in store.SPLITS),
    *store.NOISY_FILES,
)


def _read(path: Path, key: str = store.FEATURE_KEY) -> np.ndarray:
    with h5py.File(path, "r") as h5:
        return h5[key][()]


def _official_dir(root: Path, audio_dim: int = store.OFFICIAL_AUDIO_DIM) -> Path:
    """Write the official layout at official dims with 6 videos (+2 background)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    write_array(root / store.AUDIO, "avadataset", rng.random((N_OFFICIAL, T, audio_dim)))
    visual = rng.random((N_OFFICIAL, T, *store.OFFICIAL_MAP), dtype=np.float32)
    write_array(root / store.VISUAL, "avadataset", visual)
    write_array(root / store.LABELS, "avadataset", one_hot(_annotated_classes()))
    for split, rows in (("train", [0, 2, 4]), ("val", [1]), ("test", [5, 3])):
        write_array(root / store.order_file(split), "order", np.array(rows, dtype=np.int64))
    write_array(root / store.AUDIO_NOISY, "avadataset", rng.random((N_NOISY, T, audio_dim)))
    noisy_visual = rng.random((N_NOISY, T, *store.OFFICIAL_MAP), dtype=np.float32)
    write_array(root / store.VISUAL_NOISY, "avadataset", noisy_visual)
    write_array(root / store.LABELS_NOISY, "avadataset", one_hot(np.full(N_NOISY, BG)))
    return root


def _annotated_classes() -> np.ndarray:
    """The ``(6, T)`` segment classes that ANNOTATIONS describes, written out by hand."""
    classes = np.full((N_OFFICIAL, T), BG)
    classes[0, 0:10] = 0  # Dog
    classes[1, 2:6] = 1  # Cat
    classes[3, 5:10] = 2  # Bird
    classes[4, 0:10] = 1  # Cat
    classes[5, 1:3] = 2  # Bird
    return classes


@pytest.fixture
def official(tmp_path) -> Path:
    return _official_dir(tmp_path / "official")


def _local(path: Path) -> dict:
    return {"source": "local", "local_dir": str(path)}


def _listing(root: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(root.iterdir())}


# ------------------------------------------------------------------------- synthetic


SYNTHETIC = {"source": "synthetic"}


def test_synthetic_source_links_the_generated_store(tmp_path, tiny_store):
    out = tmp_path / "data" / "ave"
    info = build_store(out, SYNTHETIC, tiny_store)
    assert info == store.validate_store(out)
    assert info.n_videos == 60
    assert info.splits == {"train": 40, "val": 10, "test": 10}
    assert info.n_background == 5
    assert (info.audio_dim, info.map_shape) == (6, (3, 3, 8))
    assert _listing(out) == _listing(tiny_store)
    for path in out.iterdir():  # hard links of the synthesize stage's files, not copies
        assert path.stat().st_ino == (tiny_store / path.name).stat().st_ino, path.name
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["ave"]  # no temp dir left


def test_rebuild_replaces_the_previous_store(tmp_path, tiny_store, tiny_store_kwargs):
    out = tmp_path / "ave"
    build_store(out, SYNTHETIC, tiny_store)
    (out / "stale.txt").write_text("left over")
    other = tmp_path / "synthetic"
    generate_synthetic(other, **{**tiny_store_kwargs, "n_background": 0, "seed": 9})
    info = build_store(out, SYNTHETIC, other)
    assert info.n_background == 0
    assert not (out / "stale.txt").exists()
    assert not (out / store.LABELS_NOISY).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ave", "synthetic"]


@pytest.mark.parametrize("synthetic_dir", ["absent", "empty"])
def test_synthetic_source_without_a_generated_store_names_the_stage(tmp_path, synthetic_dir):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "data" / "ave"
    with pytest.raises(PipelineError, match=f"{synthetic_dir}: no synthetic store .*synthesize"):
        build_store(out, SYNTHETIC, tmp_path / synthetic_dir)
    assert list((tmp_path / "data").iterdir()) == []


def test_right_labels_from_the_data_key_are_linked_and_validated(tmp_path, tiny_store):
    right = tmp_path / "right_labels.h5"
    labels = store.read_array(tiny_store / store.LABELS)  # (60, T, 29)
    store.write_array(right, store.FEATURE_KEY, labels[:, ::-1])  # a different labelling
    data = {**SYNTHETIC, "right_labels": str(right)}
    info = build_store(tmp_path / "ave", data, tiny_store)
    assert info.has_right_labels
    assert os.stat(tmp_path / "ave" / store.RIGHT_LABELS).st_ino == os.stat(right).st_ino
    store.write_array(right, store.FEATURE_KEY, labels[:10])  # too few videos
    with pytest.raises(PipelineError, match=rf"{right}.*\(60, 10, 29\)"):
        build_store(tmp_path / "ave2", data, tiny_store)
    with pytest.raises(PipelineError, match="corrected labels not found"):
        build_store(
            tmp_path / "ave3", {**data, "right_labels": str(tmp_path / "nope.h5")}, tiny_store
        )


# ----------------------------------------------------------------------------- local


def test_local_source_hard_links_the_official_files(tmp_path, official):
    out = tmp_path / "data" / "ave"
    info = build_store(out, _local(official))
    assert info.n_videos == N_OFFICIAL
    assert info.audio_dim == 128
    assert info.map_shape == (7, 7, 512)
    assert info.splits == {"train": 3, "val": 1, "test": 2}
    assert info.n_background == N_NOISY
    assert sorted(p.name for p in out.iterdir()) == sorted(OFFICIAL_FILES)
    for name in OFFICIAL_FILES:
        linked, original = os.stat(out / name), os.stat(official / name)
        assert not (out / name).is_symlink(), name
        assert linked.st_ino == original.st_ino, name
        assert linked.st_dev == original.st_dev, name
        assert original.st_nlink == 2, name
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["ave"]


def test_local_source_links_optional_right_labels(tmp_path, official):
    (official / store.RIGHT_LABELS).write_bytes((official / store.LABELS).read_bytes())
    info = build_store(tmp_path / "ave", _local(official))
    assert info.has_right_labels is True
    out_stat = os.stat(tmp_path / "ave" / store.RIGHT_LABELS)
    assert out_stat.st_ino == os.stat(official / store.RIGHT_LABELS).st_ino


def test_local_source_without_noisy_files(tmp_path, official):
    for name in store.NOISY_FILES:
        (official / name).unlink()
    info = build_store(tmp_path / "ave", _local(official))
    assert info.n_background == 0
    assert not any((tmp_path / "ave" / name).exists() for name in store.NOISY_FILES)


def test_symlinks_are_the_fallback_where_hard_links_fail(tmp_path, official, monkeypatch):
    def no_hard_links(src, dst):
        raise OSError("cross-device link")

    monkeypatch.setattr(sources.os, "link", no_hard_links)
    out = tmp_path / "ave"
    build_store(out, _local(official))
    for name in OFFICIAL_FILES:
        assert (out / name).is_symlink(), name
        assert (out / name).resolve() == (official / name).resolve(), name


def test_local_labels_are_built_from_annotations_when_labels_are_absent(tmp_path, official):
    expected = _read(official / store.LABELS)
    (official / store.LABELS).unlink()
    (official / store.ANNOTATIONS).write_text(ANNOTATIONS)
    out = tmp_path / "ave"
    info = build_store(out, _local(official))
    assert info.n_videos == N_OFFICIAL
    built = _read(out / store.LABELS)
    assert built.shape == (N_OFFICIAL, T, 29)
    np.testing.assert_array_equal(built, expected)
    classes = store.segment_labels(out)
    np.testing.assert_array_equal(classes[1], [BG, BG, 1, 1, 1, 1, BG, BG, BG, BG])
    np.testing.assert_array_equal(classes[2], np.full(T, BG))  # empty event 0..0
    np.testing.assert_array_equal(classes[5], [BG, 2, 2] + [BG] * 7)
    assert os.stat(out / store.LABELS).st_nlink == 1  # written, not linked
    assert os.stat(out / store.ANNOTATIONS).st_ino == os.stat(official / store.ANNOTATIONS).st_ino
    assert class_names(out)[:4] == ["Dog", "Cat", "Bird", "3"]  # for plots and reports


def test_local_labels_file_wins_over_annotations(tmp_path, official):
    (official / store.ANNOTATIONS).write_text("Dog&v0&good&0&1\n" * N_OFFICIAL)
    out = tmp_path / "ave"
    build_store(out, _local(official))
    assert os.stat(out / store.LABELS).st_ino == os.stat(official / store.LABELS).st_ino


def test_local_with_wrong_audio_dim_keeps_the_previous_store(tmp_path, tiny_store):
    bad = _official_dir(tmp_path / "official", audio_dim=64)
    parent = tmp_path / "data"
    out = parent / "ave"
    build_store(out, SYNTHETIC, tiny_store)
    before = _listing(out)
    with pytest.raises(PipelineError) as info:
        build_store(out, _local(bad))
    message = str(info.value)
    assert "audio_feature.h5" in message
    assert "'avadataset'" in message
    assert "expected shape (*, 10, 128)" in message
    assert "found (6, 10, 64)" in message
    assert _listing(out) == before
    assert [p.name for p in parent.iterdir()] == ["ave"]
    # the official files themselves are untouched (no stray links left pointing at them)
    assert os.stat(bad / store.AUDIO).st_nlink == 1


def test_local_with_wrong_map_is_rejected(tmp_path, official):
    write_array(official / store.VISUAL, "avadataset", np.zeros((N_OFFICIAL, T, 3, 3, 8)))
    with pytest.raises(PipelineError) as info:
        build_store(tmp_path / "data" / "ave", _local(official))
    assert "visual_feature.h5" in str(info.value)
    assert "(6, 10, 7, 7, 512)" in str(info.value)
    assert "(6, 10, 3, 3, 8)" in str(info.value)
    assert list((tmp_path / "data").iterdir()) == []


@pytest.mark.parametrize("name", [store.VISUAL, "test_order.h5"])
def test_local_missing_required_file_is_named(tmp_path, official, name):
    (official / name).unlink()
    with pytest.raises(PipelineError) as info:
        build_store(tmp_path / "data" / "ave", _local(official))
    message = str(info.value)
    assert str(official) in message
    assert f"missing official file(s) ['{name}']" in message
    assert list((tmp_path / "data").iterdir()) == []


def test_local_missing_labels_and_annotations_is_named(tmp_path, official):
    (official / store.LABELS).unlink()
    with pytest.raises(PipelineError) as info:
        build_store(tmp_path / "data" / "ave", _local(official))
    assert "missing labels.h5 (and no Annotations.txt)" in str(info.value)
    assert list((tmp_path / "data").iterdir()) == []


def test_local_dir_that_does_not_exist_is_an_error(tmp_path):
    missing = tmp_path / "no_such_dir"
    with pytest.raises(PipelineError) as info:
        build_store(tmp_path / "data" / "ave", _local(missing))
    assert "data.local_dir" in str(info.value)
    assert str(missing) in str(info.value)
    assert "not found" in str(info.value)
    assert list((tmp_path / "data").iterdir()) == []


@pytest.mark.parametrize("value", [None, ""])
def test_local_dir_unset_is_an_error(tmp_path, value):
    with pytest.raises(PipelineError, match="data.local_dir must name a directory"):
        build_store(tmp_path / "ave", {"source": "local", "local_dir": value})


def test_link_official_files_into_an_existing_directory(tmp_path, official):
    dest = tmp_path / "dest"
    dest.mkdir()
    link_official_files(official, dest)
    assert sorted(p.name for p in dest.iterdir()) == sorted(OFFICIAL_FILES)


# --------------------------------------------------------------------------- summary


def test_store_summary_counts_fractions_and_checksums(tmp_path, tiny_store):
    out = tmp_path / "ave"
    info = build_store(out, SYNTHETIC, tiny_store)
    summary = store_summary(out, "synthetic", info)
    assert summary["source"] == "synthetic"
    assert summary["videos"] == {"train": 40, "val": 10, "test": 10}
    assert summary["background_videos"] == 5
    assert summary["audio_dim"] == 6
    assert summary["map_shape"] == [3, 3, 8]
    labels = _read(out / store.LABELS).argmax(axis=-1)
    for split in store.SPLITS:
        rows = _read(out / store.order_file(split), "order")
        expected = float((labels[rows] != BG).mean())
        assert summary["foreground_fraction"][split] == pytest.approx(expected, abs=1e-12)
        assert isinstance(summary["foreground_fraction"][split], float)
    files = sorted(p.name for p in out.iterdir())
    assert sorted(summary["sha256"]) == files
    for name in files:
        assert summary["sha256"][name] == hashlib.sha256((out / name).read_bytes()).hexdigest()
    assert json.loads(json.dumps(summary)) == summary


def test_store_summary_of_a_local_store(tmp_path, official):
    out = tmp_path / "ave"
    info = build_store(out, _local(official))
    summary = store_summary(out, "local", info)
    assert summary["videos"] == {"train": 3, "val": 1, "test": 2}
    # train rows 0, 2, 4: 10 + 0 + 10 of 30 segments; val row 1: 4/10; test 5, 3: (2 + 5)/20
    assert summary["foreground_fraction"] == pytest.approx(
        {"train": 20 / 30, "val": 0.4, "test": 7 / 20}
    )
    assert summary["map_shape"] == [7, 7, 512]
    assert (
        summary["sha256"][store.AUDIO]
        == hashlib.sha256((official / store.AUDIO).read_bytes()).hexdigest()
    )


def test_sha256_file_matches_hashlib_on_a_multi_block_file(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "blob").write_bytes(data)
    assert sha256_file(tmp_path / "blob") == hashlib.sha256(data).hexdigest()
