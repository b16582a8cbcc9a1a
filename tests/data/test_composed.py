"""Composed videos: features gathered from (store row, segment) pairs of the store."""

import warnings

import h5py
import numpy as np
import pytest
import torch

from pipeline.data import store
from pipeline.data.composed import ComposedDataset, check_compositions, identity_sources
from pipeline.data.dataset import AVEDataset
from pipeline.errors import PipelineError


def _features(root):
    with h5py.File(root / store.AUDIO) as a, h5py.File(root / store.VISUAL) as v:
        return a[store.FEATURE_KEY][()], v[store.FEATURE_KEY][()]


def test_identity_sources_are_whole_videos():
    sources = identity_sources(np.array([7, 2]), T=3)
    assert sources.tolist() == [[[7, 0], [7, 1], [7, 2]], [[2, 0], [2, 1], [2, 2]]]


def test_identity_compositions_equal_the_split_dataset(tiny_store):
    rows = store.split_order(tiny_store, "train")
    labels = store.segment_labels(tiny_store)[rows]
    composed = ComposedDataset(tiny_store, identity_sources(rows), labels)
    plain = AVEDataset(tiny_store, "train")
    a, b = composed.__getitems__([3, 0, 5]), plain.__getitems__([3, 0, 5])
    for key in ("audio", "visual", "labels", "index"):
        assert np.array_equal(a[key].numpy(), b[key].numpy())


@pytest.mark.parametrize("pooled", [False, True])
def test_each_segment_comes_from_its_source(tiny_store, tiny_pooled, pooled):
    audio, visual = _features(tiny_store)
    rng = np.random.default_rng(0)
    sources = np.stack(
        [rng.integers(0, len(audio), (4, store.T)), rng.integers(0, store.T, (4, store.T))], -1
    )
    labels = rng.integers(0, store.N_CLASSES, (4, store.T))
    composed = ComposedDataset(tiny_store, sources, labels, tiny_pooled if pooled else None)
    batch = composed.__getitems__([2, 1])
    for i, k in enumerate([2, 1]):
        for t in range(store.T):
            row, seg = sources[k, t]
            assert np.allclose(batch["audio"][i, t].numpy(), audio[row, seg])
            want = visual[row, seg].mean(axis=(0, 1)) if pooled else visual[row, seg]
            assert np.allclose(batch["visual"][i, t].numpy(), want, atol=1e-6)
    assert batch["labels"].tolist() == labels[[2, 1]].tolist()


def test_pooled_features_are_shared_without_a_warning_and_batches_are_copies(
    tiny_store, tiny_pooled
):
    sources = np.zeros((1, store.T, 2), dtype=np.int64)
    labels = np.zeros((1, store.T), dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PyTorch's non-writable array warning would fail here
        composed = ComposedDataset(tiny_store, sources, labels, tiny_pooled)
    batch = composed.__getitems__([0])
    batch["visual"] += 1.0  # a batch is a copy: the shared features stay untouched
    again = composed.__getitems__([0])
    assert not torch.equal(batch["visual"], again["visual"])


def test_bad_compositions_are_rejected_with_a_clear_message():
    good = np.zeros((2, store.T, 2), dtype=np.int64)
    labels = np.zeros((2, store.T), dtype=np.int64)
    with pytest.raises(PipelineError, match=r"expected sources of shape \(n, 10, 2\)"):
        check_compositions(good[:, :5], labels, 5, "x.npz")
    with pytest.raises(PipelineError, match=r"x.npz: source rows must lie in \[0, 5\)"):
        check_compositions(good + [5, 0], labels, 5, "x.npz")
    with pytest.raises(PipelineError, match="source segments"):
        check_compositions(good + [0, 10], labels, 5, "x.npz")
    with pytest.raises(PipelineError, match="labels must lie"):
        check_compositions(good, labels + 29, 5, "x.npz")
    with pytest.raises(PipelineError, match="expected labels of shape"):
        check_compositions(good, labels[:1], 5, "x.npz")
