"""Pooled visual features: written once per store version, checked against the store."""

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.data import store
from pipeline.data.pooled import load_pooled, pool_store, pool_visual, pooled_file
from pipeline.data.store import write_array
from pipeline.errors import PipelineError

T = store.T


def _maps(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as h5:
        return h5[store.FEATURE_KEY][()]


def test_pooled_features_are_the_float32_map_means(tiny_store, tiny_pooled):
    for name in (store.VISUAL, store.VISUAL_NOISY):
        pooled = np.load(pooled_file(tiny_pooled, name))
        maps = _maps(tiny_store / name).astype(np.float64)  # (n, T, H, W, C)
        assert pooled.dtype == np.float32
        np.testing.assert_allclose(pooled, maps.mean(axis=(2, 3)), rtol=1e-6)
    assert pooled_file(tiny_pooled, store.VISUAL).name == "visual_feature.npy"
    assert sorted(p.name for p in tiny_pooled.iterdir()) == [
        "visual_feature.npy",
        "visual_feature_noisy.npy",
    ]


def test_pooling_streams_more_rows_than_one_block(tmp_path):
    maps = np.random.default_rng(0).normal(size=(70, T, 2, 2, 3))  # 70 > 64 rows per read
    write_array(tmp_path / "v.h5", "avadataset", maps)
    np.testing.assert_allclose(pool_visual(tmp_path / "v.h5"), maps.mean(axis=(2, 3)), rtol=1e-6)


def test_pooling_twice_writes_the_same_bytes(tiny_store, tmp_path):
    digests = []
    for out in (tmp_path / "a", tmp_path / "b"):
        pool_store(tiny_store, out)
        digests.append(hashlib.sha256(pooled_file(out, store.VISUAL).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_a_store_without_background_videos_has_no_pooled_noisy_file(store_copy, tmp_path):
    for name in store.NOISY_FILES:
        (store_copy / name).unlink()
    out = tmp_path / "data" / "pooled"
    out.mkdir(parents=True)
    (out / "stale.npy").write_bytes(b"from an older store")
    shapes = pool_store(store_copy, out)
    assert shapes == {store.VISUAL: (60, T, 8)}
    assert [p.name for p in out.iterdir()] == ["visual_feature.npy"]
    assert [p.name for p in out.parent.iterdir()] == ["pooled"]  # no temporary directory left


def test_loading_is_shared_per_file_version(store_copy, tmp_path):
    out = tmp_path / "pooled"
    pool_store(store_copy, out)
    first = load_pooled(out, store_copy / store.VISUAL)
    assert load_pooled(out, store_copy / store.VISUAL) is first  # train and val share it
    assert not first.flags.writeable
    maps = _maps(store_copy / store.VISUAL)
    write_array(store_copy / store.VISUAL, store.FEATURE_KEY, maps * 2)
    pool_store(store_copy, out)  # a new version of the file
    np.testing.assert_allclose(load_pooled(out, store_copy / store.VISUAL), 2 * first, rtol=1e-6)


def test_missing_pooled_features_name_the_stage(tiny_store, tmp_path):
    with pytest.raises(PipelineError, match="visual_feature.npy: pooled features not found"):
        load_pooled(tmp_path, tiny_store / store.VISUAL)


def test_pooled_features_of_another_store_are_refused(tiny_store, tmp_path):
    np.save(tmp_path / "visual_feature.npy", np.zeros((59, T, 8), dtype=np.float32))
    with pytest.raises(PipelineError, match=r"expected float32 features of shape \(60, 10, 8\)"):
        load_pooled(tmp_path, tiny_store / store.VISUAL)


def test_unreadable_pooled_file_is_a_clear_error(tiny_store, tmp_path):
    (tmp_path / "visual_feature.npy").write_bytes(b"not numpy")
    with pytest.raises(PipelineError, match="not a readable .npy array"):
        load_pooled(tmp_path, tiny_store / store.VISUAL)
