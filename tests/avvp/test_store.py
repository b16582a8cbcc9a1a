"""The LLP store contract: a valid store passes, each kind of bad input names its file."""

import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.avvp import store as llp
from pipeline.errors import PipelineError


def test_tiny_store_is_valid_with_its_shapes(tiny_llp: Path):
    info = llp.validate_llp_store(tiny_llp)
    assert info.splits == {"train": 24, "val": 6, "test": 8}
    assert info.dims == {"vggish": (10, 8), "res152": (80, 12), "r2plus1d_18": (10, 6)}
    assert info.empty_events == 0


def test_official_shapes_are_required_for_real_sources(tiny_llp: Path):
    with pytest.raises(
        PipelineError, match=r"vggish/s\d+\.npy: expected shape \(10, 128\), found shape \(10, 8\)"
    ):
        llp.validate_llp_store(tiny_llp, official=True)


def _first_video(store: Path, split: str = "train") -> str:
    return llp.read_weak(store / llp.WEAK_FILES[split])[0][0]


def test_missing_feature_file_is_named(llp_copy: Path):
    path = llp_copy / "res152" / f"{llp.video_id(_first_video(llp_copy, 'test'))}.npy"
    path.unlink()
    with pytest.raises(PipelineError, match=re.escape(f"{path}: feature file not found")):
        llp.validate_llp_store(llp_copy)


def test_wrong_shape_is_named(llp_copy: Path):
    path = llp_copy / "r2plus1d_18" / f"{llp.video_id(_first_video(llp_copy, 'val'))}.npy"
    np.save(path, np.zeros((9, 6), np.float32))
    # the first (train) video of a kind sets the shape; a later one that differs is reported
    message = f"{path}: expected shape (10, 6), found shape (9, 6)"
    with pytest.raises(PipelineError, match=re.escape(message)):
        llp.validate_llp_store(llp_copy)


def test_non_finite_feature_is_named(llp_copy: Path):
    path = llp_copy / "vggish" / f"{llp.video_id(_first_video(llp_copy))}.npy"
    array = np.load(path)
    array[3, 2] = np.nan
    np.save(path, array)
    with pytest.raises(PipelineError, match=re.escape(f"{path}: expected finite values")):
        llp.validate_llp_store(llp_copy)


def _append(path: Path, line: str) -> int:
    with path.open("a") as handle:
        handle.write(line + "\n")
    return len(path.read_text().splitlines())


def test_unknown_class_name_is_named_with_its_line(llp_copy: Path):
    path = llp_copy / llp.WEAK_FILES["val"]
    line = _append(path, "x0000000000_0_10\tSpeech,Unicorn")
    with pytest.raises(
        PipelineError, match=rf"{re.escape(str(path))} line {line}: .*unknown class name 'Unicorn'"
    ):
        llp.validate_llp_store(llp_copy)


@pytest.mark.parametrize(("onset", "offset"), [(4, 4), (7, 2)])
def test_onset_not_before_offset_is_an_error(llp_copy: Path, onset: int, offset: int):
    path = llp_copy / llp.DENSE_FILES["visual"]
    name = _first_video(llp_copy, "test")
    line = _append(path, f"{name}\t{onset}\t{offset}\tDog")
    with pytest.raises(
        PipelineError,
        match=rf"line {line}: expected onset < offset, found onset {onset} >= offset {offset}",
    ):
        llp.validate_llp_store(llp_copy)


@pytest.mark.parametrize("time", ["11", "-1", "2.5", ""])
def test_bad_time_is_an_error(llp_copy: Path, time: str):
    path = llp_copy / llp.DENSE_FILES["audio"]
    line = _append(path, f"{_first_video(llp_copy, 'val')}\t0\t{time}\tDog")
    with pytest.raises(PipelineError, match=rf"line {line}: expected offset a whole number"):
        llp.validate_llp_store(llp_copy)


def test_bad_header_and_missing_file(llp_copy: Path):
    path = llp_copy / llp.WEAK_FILES["train"]
    path.write_text("name\tlabels\n" + "".join(path.read_text().splitlines(True)[1:]))
    with pytest.raises(PipelineError, match="expected the tab-separated header"):
        llp.validate_llp_store(llp_copy)
    path.unlink()
    with pytest.raises(PipelineError, match=re.escape(f"{path}: file not found")):
        llp.validate_llp_store(llp_copy)


def test_a_video_in_two_splits_is_an_error(llp_copy: Path):
    name = _first_video(llp_copy, "train")
    _append(llp_copy / llp.WEAK_FILES["test"], f"{name}\tDog")
    with pytest.raises(PipelineError, match="in one split only, found it also in AVVP_train.csv"):
        llp.validate_llp_store(llp_copy)


def test_dense_labels_rasterise_end_exclusive():
    events = [llp.Event("a", 0, 3, 2), llp.Event("b", 9, 10, 0), llp.Event("z", 0, 10, 1)]
    dense = llp.dense_labels(events, ["a", "b"])
    assert dense.shape == (2, 25, 10)
    assert dense[0, 2].tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert dense[1, 0].tolist() == [0] * 9 + [1]
    assert dense.sum() == 4  # the event of a video of no split is ignored


def test_split_reader_loads_labels_and_features(tiny_llp: Path):
    split = llp.load_split(tiny_llp, "val")
    assert split.weak.shape == (6, 25) and split.dense.shape == (6, 2, 25, 10)
    # every weak label has an event in some modality, and no event lacks its weak label
    np.testing.assert_array_equal(split.dense.any(axis=(1, 3)), split.weak.astype(bool))
    features = split.features([0, 2])
    assert {k: v.shape for k, v in features.items()} == {
        "vggish": (2, 10, 8),
        "res152": (2, 80, 12),
        "r2plus1d_18": (2, 10, 6),
    }
    assert llp.load_split(tiny_llp, "train").dense is None


def test_real_annotations_pass_with_the_six_known_empty_rows(llp_reference: Path):
    counts, empty = llp._check_dense(llp_reference)
    assert empty == len(llp.KNOWN_EMPTY_EVENTS) == 6
    assert counts == {"audio": 4131 - 6, "visual": 2495}
    splits = llp._check_splits(llp_reference)
    assert {k: len(v) for k, v in splits.items()} == {"train": 10000, "val": 649, "test": 1200}
