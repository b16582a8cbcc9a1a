"""Tests of pipeline.evaluation.metrics: hand-computed cases, GT-repeat of seed 004 Table 1."""

import json

import h5py
import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.evaluation.metrics import format_table, gt_repeat, model_repeat, segment_metrics

# Three classes: events 0 and 1, background 2.
SMALL = {"n_classes": 3, "background": 2}


def test_hand_computed_example():
    y_true = np.array([[0, 0, 0, 1], [1, 2, 2, 2]])
    y_pred = np.array([[0, 0, 1, 1], [2, 2, 2, 2]])
    m = segment_metrics(y_true, y_pred, **SMALL)
    # Confusion matrix (rows true, cols pred): true 0 -> 0,0,1; true 1 -> 1,2; true 2 -> 2,2,2.
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 3]]
    assert m["n_segments"] == 8
    # 2 + 1 + 3 correct of 8.
    assert m["accuracy"] == pytest.approx(6 / 8)
    # Per-class F1: class 0 P=2/2 R=2/3 -> 4/5; class 1 P=1/2 R=1/2 -> 1/2;
    # class 2 P=3/4 R=3/3 -> 6/7. Weighted by true support 3, 2, 3 over 8 segments.
    assert m["weighted_f1"] == pytest.approx((3 * 4 / 5 + 2 * 1 / 2 + 3 * 6 / 7) / 8)
    # Background: 3 hits, 3 true, 4 predicted.
    assert m["non_ave_recall"] == pytest.approx(1.0)
    assert m["non_ave_precision"] == pytest.approx(3 / 4)
    assert m["non_ave_f1"] == pytest.approx(6 / 7)
    # Events: 2 + 1 = 3 correctly classified, 5 true event segments, 8 - 4 = 4 predicted.
    assert m["ave_recall"] == pytest.approx(3 / 5)
    assert m["ave_precision"] == pytest.approx(3 / 4)
    assert m["ave_f1"] == pytest.approx(2 / 3)
    assert m["per_class_accuracy"] == pytest.approx([2 / 3, 1 / 2, 1.0])


def test_result_is_plain_json():
    m = segment_metrics(np.array([0, 1, 2]), np.array([0, 2, 2]), **SMALL)
    assert json.loads(json.dumps(m)) == m
    assert all(type(v) in (float, int, list) for v in m.values())


def test_never_predicting_background_leaves_precision_undefined():
    # GT-repeat-like: the background segment is predicted as the video's event.
    m = segment_metrics(np.array([0, 2]), np.array([0, 0]), **SMALL)
    assert m["non_ave_recall"] == 0.0
    assert m["non_ave_precision"] is None
    assert m["non_ave_f1"] is None
    # Events: 1 hit, 1 true, 2 predicted.
    assert m["ave_recall"] == pytest.approx(1.0)
    assert m["ave_precision"] == pytest.approx(1 / 2)
    assert m["ave_f1"] == pytest.approx(2 / 3)


def test_zero_recall_and_precision_give_zero_f1():
    m = segment_metrics(np.array([0, 2]), np.array([2, 0]), **SMALL)
    assert (m["non_ave_recall"], m["non_ave_precision"], m["non_ave_f1"]) == (0.0, 0.0, 0.0)
    assert (m["ave_recall"], m["ave_precision"], m["ave_f1"]) == (0.0, 0.0, 0.0)
    assert m["accuracy"] == 0.0
    assert m["weighted_f1"] == 0.0


def test_perfect_prediction():
    y = np.array([[0, 1, 2, 2], [1, 1, 0, 2]])
    m = segment_metrics(y, y.copy(), **SMALL)
    for key in ("accuracy", "weighted_f1", "non_ave_f1", "non_ave_recall", "ave_f1"):
        assert m[key] == pytest.approx(1.0)
    assert m["non_ave_precision"] == m["ave_precision"] == pytest.approx(1.0)
    assert m["per_class_accuracy"] == [1.0, 1.0, 1.0]


def test_all_background_prediction():
    m = segment_metrics(np.array([0, 1, 2]), np.array([2, 2, 2]), **SMALL)
    assert m["accuracy"] == pytest.approx(1 / 3)
    # Background: 1 hit, 1 true, 3 predicted -> F1 = 2 * (1/3) / (4/3) = 1/2.
    assert m["non_ave_recall"] == pytest.approx(1.0)
    assert m["non_ave_precision"] == pytest.approx(1 / 3)
    assert m["non_ave_f1"] == pytest.approx(1 / 2)
    # No event predicted: precision undefined, recall 0 of 2.
    assert m["ave_recall"] == 0.0
    assert m["ave_precision"] is None
    assert m["ave_f1"] is None
    # Only class 2 has a non-zero F1 (1/2), weighted by its support 1 of 3.
    assert m["weighted_f1"] == pytest.approx(1 / 6)
    assert m["per_class_accuracy"] == [0.0, 0.0, 1.0]


def test_confusion_rows_sum_to_true_counts_and_absent_class_is_none():
    rng = np.random.default_rng(0)
    y_true = rng.choice([0, 2, 3, 28], size=(20, 10))
    y_pred = rng.integers(0, 29, size=(20, 10))
    m = segment_metrics(y_true, y_pred)
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (29, 29)
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(y_true.ravel(), minlength=29))
    np.testing.assert_array_equal(cm.sum(axis=0), np.bincount(y_pred.ravel(), minlength=29))
    assert m["n_segments"] == 200
    absent = [c for c in range(29) if c not in (0, 2, 3, 28)]
    assert all(m["per_class_accuracy"][c] is None for c in absent)
    assert all(m["per_class_accuracy"][c] is not None for c in (0, 2, 3, 28))


def test_whole_floats_are_accepted():
    m = segment_metrics(np.array([0.0, 2.0]), np.array([0, 2]), **SMALL)
    assert m["accuracy"] == 1.0


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        (np.zeros((2, 10), int), np.zeros((2, 9), int), r"shape of y_true \(2, 10\).*\(2, 9\)"),
        (np.array([0, 1]), np.array([0, 3]), r"y_pred: expected class indices in \[0, 3\)"),
        (np.array([-1, 1]), np.array([0, 1]), r"y_true: expected class indices in \[0, 3\)"),
        (np.array([0, 1]), np.array([0.0, 0.5]), "y_pred: expected integer class indices"),
        (np.array([0, np.nan]), np.array([0, 1]), "y_true: expected integer class indices"),
        (np.array([], int), np.array([], int), "at least one segment"),
    ],
)
def test_invalid_inputs_raise(y_true, y_pred, match):
    with pytest.raises(PipelineError, match=match):
        segment_metrics(y_true, y_pred, **SMALL)


def test_invalid_background_raises():
    with pytest.raises(PipelineError, match="background"):
        segment_metrics(np.array([0]), np.array([0]), n_classes=3, background=3)


def test_gt_repeat():
    labels = np.array(
        [
            [28, 5, 5, 28],  # event 5 with background around it
            [28, 28, 28, 28],  # background-only video
            [3, 3, 7, 28],  # two event classes: the most frequent, 3, wins
            [1, 2, 28, 28],  # a tie goes to the lowest class index
        ]
    )
    expected = np.array([[5] * 4, [28] * 4, [3] * 4, [1] * 4])
    np.testing.assert_array_equal(gt_repeat(labels), expected)


def test_gt_repeat_rejects_bad_labels():
    with pytest.raises(PipelineError, match=r"expected shape \(n_videos, T\)"):
        gt_repeat(np.zeros(10, int))
    with pytest.raises(PipelineError, match="expected class indices"):
        gt_repeat(np.array([[-1, 28]]))


def test_model_repeat_ignores_background_column():
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]])  # background (2) is the argmax of row 0
    np.testing.assert_array_equal(model_repeat(probs, background=2, T=3), [[1, 1, 1], [0, 0, 0]])
    probs29 = np.full((1, 29), 0.01)
    probs29[0, 28], probs29[0, 4] = 0.6, 0.1
    np.testing.assert_array_equal(model_repeat(probs29), [[4] * 10])


def test_model_repeat_rejects_bad_shape():
    with pytest.raises(PipelineError, match=r"video_probs: expected shape \(n_videos, C \+ 1\)"):
        model_repeat(np.ones(29))


def test_format_table():
    ave = {
        "accuracy": 0.671,
        "weighted_f1": 0.615,
        "non_ave_f1": 0.021,
        "non_ave_recall": 0.011,
        "non_ave_precision": 0.258,
        "ave_f1": 0.737,
        "ave_recall": 0.813,
        "ave_precision": 0.674,
    }
    repeat = {**ave, "non_ave_f1": None, "non_ave_recall": 0.0, "non_ave_precision": None}
    lines = format_table({"AVE": ave, "GT-repeat": repeat}).splitlines()
    assert lines[0] == "| Method | Accuracy | Wt. F1 | Non-AVE F1 (R/P) | AVE F1 (R/P) |"
    assert lines[1] == "|---|---:|---:|---:|---:|"
    assert lines[2] == "| AVE | 67.1 | 61.5 | 2.1 (1.1/25.8) | 73.7 (81.3/67.4) |"
    assert lines[3] == "| GT-repeat | 67.1 | 61.5 | - (0.0/-) | 73.7 (81.3/67.4) |"


def test_gt_repeat_on_real_test_split_matches_table_1(ave_reference, reference_segment_labels):
    with h5py.File(ave_reference / "test_order.h5") as f:
        order = f["order"][()]
    labels = reference_segment_labels[order]
    m = segment_metrics(labels, gt_repeat(labels))
    assert m["n_segments"] == 4020
    assert m["accuracy"] == pytest.approx(0.822, abs=5e-4)
    assert m["non_ave_recall"] == 0.0
    assert m["non_ave_precision"] is None
    assert m["non_ave_f1"] is None


def test_reference_labels_agree_with_annotations(ave_reference, reference_segment_labels):
    labels = reference_segment_labels
    annotations = (ave_reference / "Annotations.txt").read_text().splitlines()
    rows = [line.split("&") for line in annotations]
    assert len(rows) == labels.shape[0]
    category_to_class = {}
    for row, (category, _, _, start, end) in zip(labels, rows, strict=True):
        event = (np.arange(10) >= int(start)) & (np.arange(10) < int(end))
        assert (row != 28).tolist() == event.tolist()
        category_to_class.setdefault(category, set()).update(row[event].tolist())
    assert len(category_to_class) == 28
    assert all(len(classes) == 1 for classes in category_to_class.values())
