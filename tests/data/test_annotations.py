"""Tests for pipeline.data.annotations: Annotations.txt parsing and one-hot encoding."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.data.annotations import annotation_lines, class_names, one_hot, parse_annotations
from pipeline.errors import PipelineError

BG = 28

SMALL = """\
Category&YouTubeID&Quality&Start&End
Dog&aaa&good&0&10
Cat&bbb&good&2&5
Dog&ccc&bad&3&3
Bird&ddd&good&9&10
Cat&eee&good&0&1
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Annotations.txt"
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(PipelineError) as info:
        parse_annotations(_write(tmp_path, text))
    return str(info.value)


# ------------------------------------------------------------------------- small files


def test_small_file_classes_in_order_of_first_appearance(tmp_path):
    classes, _ = parse_annotations(_write(tmp_path, SMALL))
    assert classes == ["Dog", "Cat", "Bird"]


def test_small_file_labels_with_exclusive_end_and_empty_event(tmp_path):
    _, labels = parse_annotations(_write(tmp_path, SMALL))
    expected = np.full((5, 10), BG)
    expected[0, :] = 0  # Dog 0..10
    expected[1, 2:5] = 1  # Cat 2..5, segment 5 excluded
    # row 2: Dog 3..3 is an empty event, all background
    expected[3, 9] = 2  # Bird 9..10
    expected[4, 0] = 1  # Cat 0..1
    assert labels.dtype == np.int64
    assert labels.shape == (5, 10)
    np.testing.assert_array_equal(labels, expected)


def test_file_without_header_parses_its_first_line_as_a_video(tmp_path):
    body = SMALL.split("\n", 1)[1]
    classes, labels = parse_annotations(_write(tmp_path, body))
    assert classes == ["Dog", "Cat", "Bird"]
    assert labels.shape == (5, 10)
    np.testing.assert_array_equal(labels[0], np.zeros(10))


def test_header_detection_ignores_case_and_blank_lines(tmp_path):
    text = "\n  category&id&q&s&e  \nCat&x&good&1&3\n\nDog&y&good&0&2\n"
    classes, labels = parse_annotations(_write(tmp_path, text))
    assert classes == ["Cat", "Dog"]
    np.testing.assert_array_equal(labels[0], [BG, 0, 0] + [BG] * 7)
    np.testing.assert_array_equal(labels[1], [1, 1] + [BG] * 8)


def test_windows_line_endings_are_accepted(tmp_path):
    path = tmp_path / "Annotations.txt"
    path.write_bytes(b"Cat&x&good&1&3\r\nDog&y&good&8&10\r\n")
    classes, labels = parse_annotations(path)
    assert classes == ["Cat", "Dog"]
    np.testing.assert_array_equal(labels[1], [BG] * 8 + [1, 1])


def test_header_only_file_gives_no_videos(tmp_path):
    classes, labels = parse_annotations(_write(tmp_path, "Category&YouTubeID&Quality&Start&End\n"))
    assert classes == []
    assert labels.shape == (0, 10)


# -------------------------------------------------------------------------- malformed


def test_line_with_wrong_field_count_names_the_line(tmp_path):
    message = _error(tmp_path, "Category&YouTubeID&Quality&Start&End\nDog&a&good&0&10\nCat&b&3&5\n")
    assert "Annotations.txt" in message
    assert "line 3" in message
    assert "expected 5 '&'-separated fields" in message
    assert "found 4" in message


def test_line_with_too_many_fields_is_rejected(tmp_path):
    message = _error(tmp_path, "Dog&a&good&0&10&extra\n")
    assert "line 1" in message
    assert "found 6" in message


def test_non_integer_start_names_the_line_and_value(tmp_path):
    message = _error(tmp_path, "Dog&a&good&0&10\n\nCat&b&good&two&5\n")
    assert "line 3" in message  # the blank line still counts
    assert "expected integer Start and End" in message
    assert "'two'" in message


def test_end_beyond_ten_is_rejected(tmp_path):
    message = _error(tmp_path, "Dog&a&good&0&10\nCat&b&good&4&11\n")
    assert "line 2" in message
    assert "expected 0 <= Start <= End <= 10" in message
    assert "found 4, 11" in message


def test_start_after_end_is_rejected(tmp_path):
    message = _error(tmp_path, "Dog&a&good&6&5\n")
    assert "line 1" in message
    assert "found 6, 5" in message


def test_negative_start_is_rejected(tmp_path):
    message = _error(tmp_path, "Dog&a&good&-1&5\n")
    assert "line 1" in message
    assert "found -1, 5" in message


def test_more_than_28_categories_are_rejected(tmp_path):
    text = "".join(f"Class{i}&v{i}&good&0&10\n" for i in range(29))
    message = _error(tmp_path, text)
    assert "expected at most 28 categories" in message
    assert "found 29" in message


def test_exactly_28_categories_are_accepted(tmp_path):
    text = "".join(f"Class{i}&v{i}&good&0&10\n" for i in range(28))
    classes, labels = parse_annotations(_write(tmp_path, text))
    assert len(classes) == 28
    np.testing.assert_array_equal(labels[:, 0], np.arange(28))


def test_missing_file_is_a_pipeline_error(tmp_path):
    with pytest.raises(PipelineError, match="file not found"):
        parse_annotations(tmp_path / "Annotations.txt")


# ---------------------------------------------------------------------------- one_hot


def test_one_hot_encodes_segments_over_29_float32_classes():
    labels = np.array([[0, 28, 5], [27, 1, 28]])
    encoded = one_hot(labels)
    assert encoded.shape == (2, 3, 29)
    assert encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded.sum(axis=-1), np.ones((2, 3)))
    np.testing.assert_array_equal(encoded.argmax(axis=-1), labels)
    assert encoded[0, 1, 28] == 1.0
    assert encoded[1, 0, 27] == 1.0


def test_one_hot_with_custom_class_count():
    encoded = one_hot(np.array([2, 0]), n_classes=3)
    np.testing.assert_array_equal(encoded, [[0, 0, 1], [1, 0, 0]])


# ------------------------------------------------------------------------ real AVE file


@pytest.fixture(scope="module")
def real_annotations(ave_reference):
    return parse_annotations(ave_reference / "Annotations.txt")


def _h5(path: Path, key: str = "avadataset") -> np.ndarray:
    with h5py.File(path, "r") as h5:
        return h5[key][()]


def test_real_annotations_counts(real_annotations):
    classes, labels = real_annotations
    assert labels.shape == (4143, 10)
    assert len(classes) == 28
    assert len(set(classes)) == 28
    assert classes[0] == "Church bell"


def test_real_annotations_row_26_is_an_empty_event(real_annotations):
    _, labels = real_annotations
    np.testing.assert_array_equal(labels[26], np.full(10, BG))
    assert (labels != BG).any(axis=1).sum() == 4142  # every other video has an event


def test_real_annotations_two_thirds_of_videos_are_fully_foreground(real_annotations):
    _, labels = real_annotations
    full = (labels != BG).all(axis=1).mean()
    assert full == pytest.approx(0.664, abs=0.0005)


def test_real_annotations_every_event_is_one_contiguous_block(real_annotations):
    _, labels = real_annotations
    foreground = (labels != BG).astype(np.int8)
    starts = (np.diff(foreground, axis=1, prepend=0) == 1).sum(axis=1)
    assert set(np.unique(starts)) == {0, 1}
    for row in labels:
        assert len(set(row[row != BG])) <= 1


def test_real_test_split_foreground_share(real_annotations, ave_reference):
    _, labels = real_annotations
    order = _h5(ave_reference / "test_order.h5", "order")
    assert order.shape == (402,)
    share = (labels[order] != BG).mean()
    assert share == pytest.approx(0.822, abs=0.0005)


def test_real_annotations_match_official_closs_and_mil_labels(real_annotations, ave_reference):
    _, labels = real_annotations
    foreground = _h5(ave_reference / "labels_closs.h5")  # (4143, 10), 1 = foreground
    video_class = _h5(ave_reference / "mil_labels.h5")  # (4143, 29) one-hot
    assert foreground.shape == (4143, 10)
    assert video_class.shape == (4143, 29)
    expected = np.where(foreground == 1, video_class.argmax(axis=1)[:, None], BG)
    np.testing.assert_array_equal(labels, expected)


# ------------------------------------------------------------------------- class names


def test_class_names_of_a_store_follow_first_appearance(tmp_path):
    _write(tmp_path, SMALL)
    names = class_names(tmp_path)
    assert len(names) == 29
    assert names[:4] == ["Dog", "Cat", "Bird", "3"]  # indices no category reaches keep a number
    assert names[28] == "background"


def test_class_names_absent_without_annotations(tmp_path):
    assert class_names(tmp_path) is None


def test_annotation_lines_skip_header_and_blank_lines(tmp_path):
    path = _write(tmp_path, SMALL + "\n\n")
    lines = annotation_lines(path)
    assert lines[0] == (2, "Dog&aaa&good&0&10") and len(lines) == 5
