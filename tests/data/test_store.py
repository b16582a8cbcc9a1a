"""Tests for pipeline.data.store: validation of the data contract and the array writer."""

import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.data import store
from pipeline.data.annotations import one_hot
from pipeline.data.store import StoreInfo, validate_store, write_array
from pipeline.errors import PipelineError


def _read(path: Path, key: str = store.FEATURE_KEY) -> np.ndarray:
    with h5py.File(path, "r") as h5:
        return h5[key][()]


def _rewrite(path: Path, change, key: str = store.FEATURE_KEY) -> np.ndarray:
    """Read ``path``, apply ``change`` to a copy of its array, write it back; return it."""
    array = _read(path, key).copy()
    array = change(array)
    write_array(path, key, array)
    return array


def _error(root: Path, **kwargs) -> str:
    with pytest.raises(PipelineError) as info:
        validate_store(root, **kwargs)
    return str(info.value)


def _assert_names(message: str, path: Path, key: str) -> None:
    assert str(path) in message
    assert f"key '{key}'" in message


# ----------------------------------------------------------------------------- valid store


def test_valid_tiny_store_returns_its_store_info(tiny_store):
    info = validate_store(tiny_store)
    assert info == StoreInfo(
        n_videos=60,
        audio_dim=6,
        map_shape=(3, 3, 8),
        splits={"train": 40, "val": 10, "test": 10},
        n_background=5,
        has_right_labels=False,
    )


def test_valid_store_accepts_matching_required_dims(tiny_store):
    info = validate_store(tiny_store, audio_dim=6, map_shape=(3, 3, 8))
    assert info.audio_dim == 6
    assert info.map_shape == (3, 3, 8)
    assert validate_store(tiny_store, audio_dim=6).n_videos == 60
    assert validate_store(tiny_store, map_shape=(3, 3, 8)).n_videos == 60


def test_store_without_noisy_files_has_no_background_videos(store_copy):
    for name in store.NOISY_FILES:
        (store_copy / name).unlink()
    info = validate_store(store_copy)
    assert info.n_background == 0
    assert info.n_videos == 60


def test_valid_right_labels_are_reported(store_copy):
    (store_copy / store.RIGHT_LABELS).write_bytes((store_copy / store.LABELS).read_bytes())
    assert validate_store(store_copy).has_right_labels is True


def test_integral_float_order_is_accepted(store_copy):
    _rewrite(store_copy / "val_order.h5", lambda a: a.astype(np.float64), key="order")
    assert validate_store(store_copy).splits["val"] == 10


def test_missing_store_directory_is_an_error(tmp_path):
    message = _error(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in message
    assert "not found" in message


# ------------------------------------------------------------------------ files and keys


def test_missing_labels_file_names_file_and_key(store_copy):
    (store_copy / store.LABELS).unlink()
    message = _error(store_copy)
    assert str(store_copy / "labels.h5") in message
    assert "'avadataset'" in message
    assert "file not found" in message


def test_missing_order_file_names_file_and_order_key(store_copy):
    (store_copy / "test_order.h5").unlink()
    message = _error(store_copy)
    assert str(store_copy / "test_order.h5") in message
    assert "'order'" in message
    assert "not found" in message


def test_file_that_is_not_hdf5_is_rejected(store_copy):
    (store_copy / store.AUDIO).write_text("this is not an HDF5 file\n")
    message = _error(store_copy)
    _assert_names(message, store_copy / "audio_feature.h5", "avadataset")
    assert "expected an HDF5 file, found an unreadable file" in message


def test_wrong_key_names_expected_and_found_keys(store_copy):
    audio = _read(store_copy / store.AUDIO)
    (store_copy / store.AUDIO).unlink()
    write_array(store_copy / store.AUDIO, "features", audio)
    message = _error(store_copy)
    _assert_names(message, store_copy / "audio_feature.h5", "avadataset")
    assert "expected an HDF5 dataset named 'avadataset'" in message
    assert "found keys ['features']" in message


def test_wrong_order_key_is_rejected(store_copy):
    order = _read(store_copy / "train_order.h5", "order")
    write_array(store_copy / "train_order.h5", "avadataset", order)
    message = _error(store_copy)
    _assert_names(message, store_copy / "train_order.h5", "order")
    assert "found keys ['avadataset']" in message


# -------------------------------------------------------------------------------- shapes


def test_audio_dim_64_when_128_required_names_expected_and_found_shape(store_copy):
    write_array(store_copy / store.AUDIO, "avadataset", np.zeros((60, 10, 64)))
    message = _error(store_copy, audio_dim=128)
    _assert_names(message, store_copy / "audio_feature.h5", "avadataset")
    assert "expected shape (*, 10, 128)" in message
    assert "found (60, 10, 64)" in message


def test_required_audio_dim_against_tiny_store(tiny_store):
    message = _error(tiny_store, audio_dim=128, map_shape=(7, 7, 512))
    assert "audio_feature.h5" in message
    assert "(*, 10, 128)" in message
    assert "(60, 10, 6)" in message


def test_required_map_shape_mismatch_names_visual_file(tiny_store):
    message = _error(tiny_store, map_shape=(7, 7, 512))
    _assert_names(message, tiny_store / "visual_feature.h5", "avadataset")
    assert "expected shape (60, 10, 7, 7, 512)" in message
    assert "found (60, 10, 3, 3, 8)" in message


def test_visual_with_wrong_number_of_segments_is_rejected(store_copy):
    write_array(store_copy / store.VISUAL, "avadataset", np.zeros((60, 9, 3, 3, 8), np.float32))
    message = _error(store_copy)
    _assert_names(message, store_copy / "visual_feature.h5", "avadataset")
    assert "expected shape (60, 10, *, *, *)" in message
    assert "found (60, 9, 3, 3, 8)" in message


def test_visual_with_other_video_count_than_audio_is_rejected(store_copy):
    write_array(store_copy / store.VISUAL, "avadataset", np.zeros((59, 10, 3, 3, 8), np.float32))
    message = _error(store_copy)
    assert "visual_feature.h5" in message
    assert "expected shape (60, 10, *, *, *)" in message
    assert "found (59, 10, 3, 3, 8)" in message


def test_visual_without_map_axes_is_rejected(store_copy):
    write_array(store_copy / store.VISUAL, "avadataset", np.zeros((60, 10, 8), np.float32))
    message = _error(store_copy)
    assert "visual_feature.h5" in message
    assert "found (60, 10, 8)" in message


def test_labels_over_28_classes_are_rejected(store_copy):
    write_array(store_copy / store.LABELS, "avadataset", np.zeros((60, 10, 28), np.float32))
    message = _error(store_copy)
    _assert_names(message, store_copy / "labels.h5", "avadataset")
    assert "expected shape (60, 10, 29)" in message
    assert "found (60, 10, 28)" in message


def test_two_dimensional_order_is_rejected(store_copy):
    write_array(store_copy / "val_order.h5", "order", np.arange(10).reshape(2, 5))
    message = _error(store_copy)
    _assert_names(message, store_copy / "val_order.h5", "order")
    assert "expected shape (*)" in message
    assert "found (2, 5)" in message


# ------------------------------------------------------------------------ dtypes, values


def test_integer_audio_features_are_rejected(store_copy):
    _rewrite(store_copy / store.AUDIO, lambda a: a.astype(np.int32))
    message = _error(store_copy)
    _assert_names(message, store_copy / "audio_feature.h5", "avadataset")
    assert "expected a floating-point dtype" in message
    assert "found int32" in message


def test_integer_visual_features_are_rejected(store_copy):
    _rewrite(store_copy / store.VISUAL, lambda a: a.astype(np.int64))
    message = _error(store_copy)
    _assert_names(message, store_copy / "visual_feature.h5", "avadataset")
    assert "found int64" in message


def test_nan_in_audio_names_the_row(store_copy):
    def poison(a):
        a[37, 4, 2] = np.nan
        return a

    _rewrite(store_copy / store.AUDIO, poison)
    message = _error(store_copy)
    _assert_names(message, store_copy / "audio_feature.h5", "avadataset")
    assert "expected finite values" in message
    assert re.search(r"NaN or inf in row 37\b", message)


def test_inf_in_visual_names_the_row(store_copy):
    def poison(a):
        a[12, 0, 1, 2, 3] = np.inf
        return a

    _rewrite(store_copy / store.VISUAL, poison)
    message = _error(store_copy)
    _assert_names(message, store_copy / "visual_feature.h5", "avadataset")
    assert re.search(r"row 12\b", message)


def test_nan_row_is_reported_with_its_global_index_beyond_the_first_block(tmp_path):
    audio = np.zeros((150, 10, 4))
    audio[133, 9, 0] = np.nan
    write_array(tmp_path / store.AUDIO, "avadataset", audio)
    message = _error(tmp_path)
    assert re.search(r"NaN or inf in row 133\b", message)


def test_labels_with_two_ones_in_a_segment_name_row_and_segment(store_copy):
    def corrupt(a):
        a[3, 5, 0] = 1.0
        a[3, 5, 1] = 1.0
        return a

    _rewrite(store_copy / store.LABELS, corrupt)
    message = _error(store_copy)
    _assert_names(message, store_copy / "labels.h5", "avadataset")
    assert "one-hot rows over 29 classes" in message
    assert "row (3, 5)" in message


def test_labels_with_a_half_value_are_rejected(store_copy):
    def corrupt(a):
        a[7, 2] = 0.0
        a[7, 2, 4] = 0.5
        a[7, 2, 9] = 0.5  # sums to 1 but is not 0/1
        return a

    _rewrite(store_copy / store.LABELS, corrupt)
    message = _error(store_copy)
    assert "labels.h5" in message
    assert "row (7, 2)" in message
    assert "0.5" in message


def test_labels_with_an_all_zero_segment_are_rejected(store_copy):
    def corrupt(a):
        a[59, 9] = 0.0
        return a

    _rewrite(store_copy / store.LABELS, corrupt)
    message = _error(store_copy)
    assert "row (59, 9)" in message


def test_string_labels_are_rejected(store_copy):
    write_array(store_copy / store.LABELS, "avadataset", np.full((60, 10, 29), b"x", dtype="S1"))
    message = _error(store_copy)
    _assert_names(message, store_copy / "labels.h5", "avadataset")
    assert "expected a numeric dtype" in message


def test_bad_right_labels_are_rejected(store_copy):
    labels = _read(store_copy / store.LABELS)
    labels[0, 0] = 0
    write_array(store_copy / store.RIGHT_LABELS, "avadataset", labels)
    message = _error(store_copy)
    _assert_names(message, store_copy / "right_labels.h5", "avadataset")
    assert "row (0, 0)" in message


# --------------------------------------------------------------------------------- orders


def test_overlapping_train_and_test_orders_are_rejected(store_copy):
    train = _read(store_copy / "train_order.h5", "order")
    shared = int(train[5])
    _rewrite(store_copy / "test_order.h5", lambda a: np.append(a, shared), key="order")
    message = _error(store_copy)
    _assert_names(message, store_copy / "test_order.h5", "order")
    assert "expected indices disjoint from train_order.h5" in message
    assert f"found 1 shared, e.g. {shared}" in message


def test_order_index_out_of_range_is_rejected(store_copy):
    def out_of_range(a):
        a[0] = 60
        return a

    _rewrite(store_copy / "val_order.h5", out_of_range, key="order")
    message = _error(store_copy)
    _assert_names(message, store_copy / "val_order.h5", "order")
    assert "expected indices in [0, 60)" in message
    assert "60]" in message


def test_negative_order_index_is_rejected(store_copy):
    def negative(a):
        a[3] = -1
        return a

    _rewrite(store_copy / "train_order.h5", negative, key="order")
    message = _error(store_copy)
    assert "train_order.h5" in message
    assert "found [-1," in message


def test_repeated_order_index_is_rejected(store_copy):
    def repeat(a):
        a[1] = a[0]
        return a

    _rewrite(store_copy / "train_order.h5", repeat, key="order")
    message = _error(store_copy)
    _assert_names(message, store_copy / "train_order.h5", "order")
    assert "expected no repeated index" in message
    assert "found repeated indices" in message


def test_fractional_order_is_rejected(store_copy):
    _rewrite(store_copy / "val_order.h5", lambda a: a + 0.5, key="order")
    message = _error(store_copy)
    _assert_names(message, store_copy / "val_order.h5", "order")
    assert "expected integer row indices" in message
    assert "float64" in message


# ------------------------------------------------------------------------- noisy videos


@pytest.mark.parametrize("absent", store.NOISY_FILES)
def test_only_some_noisy_files_present_is_rejected(store_copy, absent):
    (store_copy / absent).unlink()
    message = _error(store_copy)
    assert str(store_copy) in message
    assert f"missing ['{absent}']" in message
    present = [name for name in store.NOISY_FILES if name != absent]
    assert f"found {present}" in message


def test_noisy_labels_with_an_event_are_rejected(store_copy):
    _rewrite(store_copy / store.LABELS_NOISY, lambda a: np.concatenate([one_hot([3]), a[1:]]))
    message = _error(store_copy)
    _assert_names(message, store_copy / "labels_noisy.h5", "avadataset")
    assert "every video labelled background (class 28)" in message
    assert "found an event in 1 row(s), first row 0" in message


def test_noisy_labels_with_wrong_video_count_are_rejected(store_copy):
    write_array(store_copy / store.LABELS_NOISY, "avadataset", one_hot(np.full(4, 28)))
    message = _error(store_copy)
    assert "labels_noisy.h5" in message
    assert "expected shape (5, 29)" in message
    assert "found (4, 29)" in message


def test_noisy_audio_must_match_main_audio_dim(store_copy):
    write_array(store_copy / store.AUDIO_NOISY, "avadataset", np.zeros((5, 10, 7)))
    message = _error(store_copy)
    _assert_names(message, store_copy / "audio_feature_noisy.h5", "avadataset")
    assert "expected shape (*, 10, 6)" in message
    assert "found (5, 10, 7)" in message


# ---------------------------------------------------------------- writer and readers


def test_write_array_round_trips_and_chunks_one_video(tmp_path):
    array = np.arange(4 * 10 * 3, dtype=np.float64).reshape(4, 10, 3)
    write_array(tmp_path / "a.h5", "avadataset", array)
    with h5py.File(tmp_path / "a.h5", "r") as h5:
        assert list(h5.keys()) == ["avadataset"]
        ds = h5["avadataset"]
        assert ds.dtype == np.float64
        assert ds.chunks == (1, 10, 3)
        np.testing.assert_array_equal(ds[()], array)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5"]  # no temp file left


def test_write_array_leaves_small_arrays_contiguous(tmp_path):
    write_array(tmp_path / "o.h5", "order", np.array([4, 2, 0], dtype=np.int64))
    with h5py.File(tmp_path / "o.h5", "r") as h5:
        assert h5["order"].chunks is None
        np.testing.assert_array_equal(h5["order"][()], [4, 2, 0])


def test_write_array_replaces_an_existing_file(tmp_path):
    write_array(tmp_path / "a.h5", "avadataset", np.zeros((2, 10, 3)))
    write_array(tmp_path / "a.h5", "avadataset", np.ones((1, 10, 3)))
    np.testing.assert_array_equal(_read(tmp_path / "a.h5"), np.ones((1, 10, 3)))


def test_segment_labels_are_argmax_class_indices(tmp_path):
    classes = np.array([[28] * 10, [0] * 3 + [5] * 4 + [28] * 3])
    write_array(tmp_path / store.LABELS, "avadataset", one_hot(classes).astype(np.float64))
    labels = store.segment_labels(tmp_path)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, classes)


def test_segment_labels_of_tiny_store_match_the_one_hot_file(tiny_store):
    one_hot_labels = _read(tiny_store / store.LABELS)
    labels = store.segment_labels(tiny_store)
    assert labels.shape == (60, 10)
    np.testing.assert_array_equal(one_hot(labels), one_hot_labels)


def test_split_order_reads_int64_rows(tmp_path):
    write_array(tmp_path / "val_order.h5", "order", np.array([9, 1, 5], dtype=np.int32))
    order = store.split_order(tmp_path, "val")
    assert order.dtype == np.int64
    np.testing.assert_array_equal(order, [9, 1, 5])


def test_split_orders_of_tiny_store_partition_all_rows(tiny_store):
    orders = [store.split_order(tiny_store, split) for split in store.SPLITS]
    assert [len(o) for o in orders] == [40, 10, 10]
    np.testing.assert_array_equal(np.sort(np.concatenate(orders)), np.arange(60))


def test_read_array_of_missing_file_is_a_pipeline_error(tmp_path):
    with pytest.raises(PipelineError, match="file not found"):
        store.read_array(tmp_path / "absent.h5")


def test_a_group_where_a_dataset_belongs_is_rejected(store_copy):
    (store_copy / store.AUDIO).unlink()
    with h5py.File(store_copy / store.AUDIO, "w") as h5:
        h5.create_group("avadataset")
    message = _error(store_copy)
    _assert_names(message, store_copy / "audio_feature.h5", "avadataset")
    assert "expected an HDF5 dataset, found a group" in message
