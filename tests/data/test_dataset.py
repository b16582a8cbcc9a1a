"""Tests for pipeline.data.dataset: lazy AVE datasets, pooled views and loaders."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from pipeline.data import store
from pipeline.data.annotations import one_hot
from pipeline.data.dataset import AVEDataset, make_loader
from pipeline.data.pooled import pool_store
from pipeline.data.store import write_array

BG = store.BACKGROUND
T = store.T


def _read(path: Path, key: str = store.FEATURE_KEY) -> np.ndarray:
    with h5py.File(path, "r") as h5:
        return h5[key][()]


@pytest.fixture(scope="module")
def float64_store(tmp_path_factory) -> Path:
    """A hand-written store with float64 features (like the real AVE files)."""
    root = tmp_path_factory.mktemp("float64") / "ave"
    rng = np.random.default_rng(7)
    n, m = 9, 3
    write_array(root / store.AUDIO, "avadataset", rng.normal(size=(n, T, 5)))
    write_array(root / store.VISUAL, "avadataset", rng.normal(size=(n, T, 2, 3, 4)))
    classes = np.full((n, T), BG)
    for row in range(n):
        classes[row, row % 5 : row % 5 + 3] = row % 28
    write_array(root / store.LABELS, "avadataset", one_hot(classes).astype(np.float64))
    for split, rows in (("train", [4, 0, 7, 2]), ("val", [8, 1]), ("test", [3, 6, 5])):
        write_array(root / store.order_file(split), "order", np.array(rows, dtype=np.int64))
    write_array(root / store.AUDIO_NOISY, "avadataset", rng.normal(size=(m, T, 5)))
    write_array(root / store.VISUAL_NOISY, "avadataset", rng.normal(size=(m, T, 2, 3, 4)))
    write_array(root / store.LABELS_NOISY, "avadataset", one_hot(np.full(m, BG)))
    store.validate_store(root)
    return root


# ---------------------------------------------------------------------- items, shapes


def test_len_is_the_split_size(tiny_store):
    assert [len(AVEDataset(tiny_store, split)) for split in store.SPLITS] == [40, 10, 10]


def test_item_shapes_and_dtypes(tiny_store):
    item = AVEDataset(tiny_store, "train")[3]
    assert set(item) == {"audio", "visual", "labels", "index"}
    assert item["audio"].shape == (T, 6)
    assert item["visual"].shape == (T, 3, 3, 8)
    assert item["labels"].shape == (T,)
    assert item["audio"].dtype == torch.float32
    assert item["visual"].dtype == torch.float32
    assert item["labels"].dtype == torch.int64
    assert item["index"].dtype == torch.int64
    assert int(item["index"]) == 3


def test_item_matches_the_hdf5_row_of_the_split_order(tiny_store):
    dataset = AVEDataset(tiny_store, "val")
    order = store.split_order(tiny_store, "val")
    audio, visual = _read(tiny_store / store.AUDIO), _read(tiny_store / store.VISUAL)
    labels = store.segment_labels(tiny_store)
    for i in (0, 4, 9):
        item = dataset[i]
        row = order[i]
        np.testing.assert_array_equal(item["audio"].numpy(), audio[row])
        np.testing.assert_array_equal(item["visual"].numpy(), visual[row])
        np.testing.assert_array_equal(item["labels"].numpy(), labels[row])


def test_batch_shapes_and_dtypes(tiny_store):
    batch = AVEDataset(tiny_store, "train").__getitems__([0, 5, 9])
    assert batch["audio"].shape == (3, T, 6)
    assert batch["visual"].shape == (3, T, 3, 3, 8)
    assert batch["labels"].shape == (3, T)
    assert batch["index"].tolist() == [0, 5, 9]
    assert batch["audio"].dtype == torch.float32
    assert batch["visual"].dtype == torch.float32
    assert batch["labels"].dtype == torch.int64


def test_getitems_keeps_requested_order_and_duplicates(tiny_store):
    dataset = AVEDataset(tiny_store, "train")
    order = store.split_order(tiny_store, "train")
    audio, visual = _read(tiny_store / store.AUDIO), _read(tiny_store / store.VISUAL)
    labels = store.segment_labels(tiny_store)
    indices = [17, 3, 39, 3, 0, 17, 17]
    batch = dataset.__getitems__(indices)
    rows = order[indices]
    assert batch["index"].tolist() == indices
    np.testing.assert_array_equal(batch["audio"].numpy(), audio[rows])
    np.testing.assert_array_equal(batch["visual"].numpy(), visual[rows])
    np.testing.assert_array_equal(batch["labels"].numpy(), labels[rows])


def test_float64_store_is_read_as_float32_with_exact_values(float64_store):
    dataset = AVEDataset(float64_store, "train")
    batch = dataset.__getitems__([2, 0, 3, 1])
    rows = np.array([7, 4, 2, 0])
    assert batch["audio"].dtype == torch.float32
    assert batch["visual"].dtype == torch.float32
    audio = _read(float64_store / store.AUDIO)
    visual = _read(float64_store / store.VISUAL)
    assert audio.dtype == np.float64
    np.testing.assert_array_equal(batch["audio"].numpy(), audio[rows].astype(np.float32))
    np.testing.assert_array_equal(batch["visual"].numpy(), visual[rows].astype(np.float32))
    np.testing.assert_array_equal(
        batch["labels"].numpy(), store.segment_labels(float64_store)[rows]
    )


def test_out_of_range_index_raises_index_error(tiny_store):
    dataset = AVEDataset(tiny_store, "test")
    with pytest.raises(IndexError):
        dataset[10]
    with pytest.raises(IndexError):
        dataset.__getitems__([0, 10])
    with pytest.raises(IndexError):
        dataset.__getitems__([-1])


def test_labels_attribute_is_the_split_segment_labels(tiny_store):
    dataset = AVEDataset(tiny_store, "test")
    expected = store.segment_labels(tiny_store)[store.split_order(tiny_store, "test")]
    assert dataset.labels.dtype == np.int64
    np.testing.assert_array_equal(dataset.labels, expected)


# ---------------------------------------------------------------------------- pooled


def test_pooled_dataset_gives_map_means_in_item_order(tiny_store, tiny_pooled):
    pooled = AVEDataset(tiny_store, "train", pooled=tiny_pooled)
    full = AVEDataset(tiny_store, "train")
    indices = [8, 1, 8, 30]
    batch = pooled.__getitems__(indices)
    assert batch["visual"].shape == (4, T, 8)
    assert batch["visual"].dtype == torch.float32
    maps = full.__getitems__(indices)["visual"].double()
    np.testing.assert_allclose(batch["visual"].numpy(), maps.mean(dim=(2, 3)).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(
        batch["audio"].numpy(), full.__getitems__(indices)["audio"].numpy()
    )


# --------------------------------------------------------------- background videos


def test_background_videos_are_appended_with_all_background_labels(tiny_store):
    dataset = AVEDataset(tiny_store, "train", background_videos=True)
    assert len(dataset) == 45
    assert dataset.n_background_videos == 5
    np.testing.assert_array_equal(dataset.labels[40:], np.full((5, T), BG))
    np.testing.assert_array_equal(
        dataset.labels[:40],
        store.segment_labels(tiny_store)[store.split_order(tiny_store, "train")],
    )
    noisy_audio = _read(tiny_store / store.AUDIO_NOISY)
    noisy_visual = _read(tiny_store / store.VISUAL_NOISY)
    item = dataset[42]
    np.testing.assert_array_equal(item["audio"].numpy(), noisy_audio[2])
    np.testing.assert_array_equal(item["visual"].numpy(), noisy_visual[2])
    np.testing.assert_array_equal(item["labels"].numpy(), np.full(T, BG))


def test_batch_mixing_event_and_background_videos_keeps_its_order(tiny_store):
    dataset = AVEDataset(tiny_store, "val", background_videos=True, pooled=None)
    order = store.split_order(tiny_store, "val")
    audio = _read(tiny_store / store.AUDIO)
    noisy_audio = _read(tiny_store / store.AUDIO_NOISY)
    visual = _read(tiny_store / store.VISUAL)
    noisy_visual = _read(tiny_store / store.VISUAL_NOISY)
    indices = [14, 2, 10, 9, 14, 0]
    batch = dataset.__getitems__(indices)
    expected_audio = [noisy_audio[i - 10] if i >= 10 else audio[order[i]] for i in indices]
    expected_visual = [noisy_visual[i - 10] if i >= 10 else visual[order[i]] for i in indices]
    np.testing.assert_array_equal(batch["audio"].numpy(), np.stack(expected_audio))
    np.testing.assert_array_equal(batch["visual"].numpy(), np.stack(expected_visual))
    expected_bg = [i >= 10 for i in indices]
    np.testing.assert_array_equal((batch["labels"] == BG).all(dim=1).numpy()[expected_bg], True)
    assert batch["index"].tolist() == indices


def test_pooled_background_videos(float64_store, tmp_path):
    pool_store(float64_store, tmp_path / "pooled")
    dataset = AVEDataset(float64_store, "test", tmp_path / "pooled", background_videos=True)
    assert len(dataset) == 6
    assert dataset.n_background_videos == 3
    batch = dataset.__getitems__([5, 0])
    noisy = _read(float64_store / store.VISUAL_NOISY)
    main = _read(float64_store / store.VISUAL)
    np.testing.assert_allclose(batch["visual"][0].numpy(), noisy[2].mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(batch["visual"][1].numpy(), main[3].mean(axis=(1, 2)), rtol=1e-6)


def test_no_background_videos_unless_asked_or_present(tiny_store, store_copy):
    assert AVEDataset(tiny_store, "train").n_background_videos == 0
    for name in store.NOISY_FILES:
        (store_copy / name).unlink()
    dataset = AVEDataset(store_copy, "train", background_videos=True)
    assert dataset.n_background_videos == 0
    assert len(dataset) == 40


# --------------------------------------------------------------------------- loaders


def _epoch(loader) -> list[int]:
    return [i for batch in loader for i in batch["index"].tolist()]


def test_loader_without_shuffle_goes_in_order_with_full_batches(tiny_store):
    loader = make_loader(AVEDataset(tiny_store, "train"), batch_size=16)
    batches = list(loader)
    assert [len(b["index"]) for b in batches] == [16, 16, 8]
    assert batches[0]["audio"].shape == (16, T, 6)
    assert batches[0]["visual"].shape == (16, T, 3, 3, 8)
    assert _epoch(loader) == list(range(40))


def test_shuffled_loader_is_deterministic_by_seed_and_covers_each_item_once(tiny_store):
    dataset = AVEDataset(tiny_store, "train", background_videos=True)
    first = make_loader(dataset, batch_size=7, shuffle=True, seed=3)
    second = make_loader(dataset, batch_size=7, shuffle=True, seed=3)
    other = make_loader(dataset, batch_size=7, shuffle=True, seed=4)
    epochs_first = [_epoch(first), _epoch(first)]
    epochs_second = [_epoch(second), _epoch(second)]
    assert epochs_first == epochs_second
    for epoch in epochs_first:
        assert sorted(epoch) == list(range(45))
    assert epochs_first[0] != list(range(45))
    assert epochs_first[0] != epochs_first[1]  # reshuffled every epoch
    assert _epoch(other) != epochs_first[0]


def test_loader_batches_match_the_dataset_items(tiny_store):
    dataset = AVEDataset(tiny_store, "test")
    batch = next(iter(make_loader(dataset, batch_size=4, shuffle=True, seed=0)))
    for position, index in enumerate(batch["index"].tolist()):
        item = dataset[index]
        torch.testing.assert_close(batch["audio"][position], item["audio"], rtol=0, atol=0)
        torch.testing.assert_close(batch["visual"][position], item["visual"], rtol=0, atol=0)
        torch.testing.assert_close(batch["labels"][position], item["labels"])
