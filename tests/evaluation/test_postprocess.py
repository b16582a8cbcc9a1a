"""Tests of Bag to Instance Label Correction (seed 002 §"Bag to Instance Label Correction")."""

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.evaluation.postprocess import b2ilc

A, B, C, D, E, F = 1, 2, 3, 4, 5, 6
G = 28  # background


def corrected(row: list[int], threshold: float = 0.5) -> list[int]:
    return b2ilc(np.array([row]), threshold).tolist()[0]


def test_fig6_two_bags_are_corrected_to_the_dominant_class() -> None:
    # Fig. 6: incorrect FG_B and FG_C instances in two pseudo-positive bags become FG_A.
    row = [G, A, A, B, A, G, A, C, A, G]
    assert corrected(row) == [G, A, A, A, A, G, A, A, A, G]


def test_witness_rate_of_exactly_the_threshold_is_not_enough() -> None:
    # "strict majority voting": WR = 0.5 does not exceed the threshold 0.5.
    assert corrected([G, A, A, B, B, G, G, G, G, G]) == [G, A, A, B, B, G, G, G, G, G]
    assert corrected([A, B, G, G, G, G, G, G, G, G]) == [A, B, G, G, G, G, G, G, G, G]
    assert corrected([A, A, A, B, B, G, G, G, G, G]) == [A] * 5 + [G] * 5  # WR 0.6
    assert corrected([A, A, A, B, G, G, G, G, G, G], 0.75) == [A, A, A, B] + [G] * 6
    assert corrected([A, A, A, B, G, G, G, G, G, G], 0.74) == [A] * 4 + [G] * 6


def test_a_dominant_class_must_be_unique() -> None:
    # A threshold below 0.5 lets two classes tie for the top count: no dominant label.
    assert corrected([A, A, B, B, G, G, G, G, G, G], 0.3) == [A, A, B, B] + [G] * 6
    assert corrected([A, A, B, C, G, G, G, G, G, G], 0.3) == [A] * 4 + [G] * 6


def test_background_only_and_pure_runs_are_left_alone() -> None:
    assert corrected([G] * 10) == [G] * 10
    assert corrected([A] * 10) == [A] * 10
    assert corrected([G, A, G, B, G, C, G, G, G, G]) == [G, A, G, B, G, C, G, G, G, G]


def test_several_runs_with_different_classes_in_one_video() -> None:
    row = [A, A, B, G, C, C, D, G, E, F]
    assert corrected(row) == [A, A, A, G, C, C, C, G, E, F]  # [E, F] is a tie


def test_borders_never_move_and_videos_are_independent() -> None:
    predictions = np.array([[G, B, A, A, G, G, G, G, G, G], [C, C, D, G, G, G, G, G, G, D]])
    out = b2ilc(predictions)
    assert out.tolist() == [[G, A, A, A, G, G, G, G, G, G], [C, C, C, G, G, G, G, G, G, D]]
    assert ((out == G) == (predictions == G)).all()


def test_returns_a_new_array_of_the_same_dtype() -> None:
    predictions = np.array([[A, B, A, G]], dtype=np.int32)
    out = b2ilc(predictions)
    assert out.tolist() == [[A, A, A, G]]
    assert predictions.tolist() == [[A, B, A, G]]
    assert out.dtype == np.int32


def test_background_index_is_a_parameter() -> None:
    out = b2ilc(np.array([[0, 3, 3, 5, 0, 28, 28, 7]]), background=0)
    assert out.tolist() == [[0, 3, 3, 3, 0, 28, 28, 28]]


@pytest.mark.parametrize(
    ("predictions", "threshold", "message"),
    [
        (np.array([A, B]), 0.5, r"expected an \(n, T\) integer array, found shape \(2,\)"),
        (np.array([[0.5, 1.0]]), 0.5, "float64"),
        (np.array([[A, B]]), 1.5, r"threshold: expected a number in \[0, 1\], found 1.5"),
        (np.array([[A, B]]), True, "found True"),
    ],
)
def test_bad_inputs_are_user_errors(predictions, threshold, message) -> None:
    with pytest.raises(PipelineError, match=message):
        b2ilc(predictions, threshold)
