"""bench.avvp_slice_errors: the sources of the slice labels' false positives, by hand."""

import math

import numpy as np

from bench.avvp_slice_errors import SOURCES, false_positive_sources


def test_each_false_positive_gets_the_first_source_the_truth_offers():
    # 1 video, 2 slices, 2 modalities (audio, visual), 3 classes
    truth = np.zeros((1, 2, 2, 3), dtype=bool)
    truth[0, 0, 0, 0] = True  # class 0 heard in slice 0
    truth[0, 1, 1, 1] = True  # class 1 seen in slice 1
    present = np.zeros((1, 2, 3), dtype=bool)
    present[0, 0, 0] = present[0, 1, 1] = True
    present[0, 1, 2] = True  # class 2 seen in a segment outside both slices
    predicted = truth.copy()
    predicted[0, 0, 1, 0] = True  # seen in slice 0: heard there -> other modality
    predicted[0, 0, 1, 1] = True  # seen in slice 0: seen in slice 1 only -> elsewhere
    predicted[0, 1, 1, 2] = True  # seen in slice 1: seen outside the slices -> elsewhere
    predicted[0, 1, 0, 2] = True  # heard in slice 1: heard nowhere, not seen there -> neither
    result = false_positive_sources(predicted, truth, present)
    assert result["visual"] == {
        "false positives": 3,
        "other modality in the slice": 1 / 3,
        "same modality elsewhere": 2 / 3,
        "neither": 0.0,
    }
    assert result["audio"]["false positives"] == 1 and result["audio"]["neither"] == 1.0


def test_the_other_modality_wins_over_elsewhere_and_no_false_positive_gives_nan():
    truth = np.zeros((1, 1, 2, 1), dtype=bool)
    truth[0, 0, 0, 0] = True  # heard in the slice
    present = np.ones((1, 2, 1), dtype=bool)  # and seen elsewhere
    predicted = np.ones((1, 1, 2, 1), dtype=bool)
    result = false_positive_sources(predicted, truth, present)
    assert result["visual"]["other modality in the slice"] == 1.0
    assert result["audio"]["false positives"] == 0
    assert all(math.isnan(result["audio"][s]) for s in SOURCES)
