"""The committed real-annotation statistics agree with the real files (drift check)."""

from pathlib import Path

import numpy as np

from pipeline.avvp import store as llp
from pipeline.avvp.statistics import measure, measure_labels, reference_statistics


def test_committed_statistics_equal_the_real_annotations(llp_reference: Path):
    assert measure(llp_reference) == reference_statistics()


def test_committed_statistics_are_the_release_totals():
    stats = reference_statistics()
    assert sum(stats["classes_per_video"]) == 10000  # train videos
    assert len(stats["class_counts"]) == 25
    for modality in ("audio", "visual"):
        by_runs = stats["lengths_by_runs"][modality]
        assert [sum(row) for row in by_runs] == [
            (k + 1) * n for k, n in enumerate(stats["runs"][modality])
        ]


def test_real_weak_and_dense_labels_disagree(llp_reference: Path):
    """Issue 30's counts, from the label arrays: 38 of the 3,348 val and test weak labels
    have no dense event; 91 dense (modality, video, class) pairs, 51 audio and 40 visual
    (65 (video, class) pairs), have no weak label."""
    splits = [llp.load_split(llp_reference, split) for split in ("val", "test")]
    weak = np.concatenate([s.weak for s in splits]) > 0  # (n, 25)
    present = np.concatenate([s.dense for s in splits]).any(axis=-1)  # (n, 2, 25)
    assert weak.sum() == 3348
    assert (weak & ~present.any(axis=1)).sum() == 38
    untagged = present & ~weak[:, None]  # (n, 2, 25)
    assert untagged.sum(axis=(0, 2)).tolist() == [51, 40]
    assert untagged.any(axis=1).sum() == 65
    gaps = reference_statistics()["annotation_gaps"]
    assert (gaps["weak_labels"], gaps["weak_without_dense"]) == (3348, 38)
    assert gaps["dense_without_weak"] == {"audio_only": 25, "visual_only": 14, "audio_visual": 26}


def test_annotation_gaps_on_a_hand_made_case():
    weak = np.zeros((2, 25))
    weak[0, [0, 1]] = 1  # class 1 of video 0: a weak label without any dense event
    weak[1, 2] = 1
    dense = np.zeros((2, 2, 25, 10))
    dense[0, :, 0, 3] = 1  # weak label with audio and visual events
    dense[0, 0, 4, 0] = 1  # untagged, audio only
    dense[1, 1, 2, :] = 1  # weak label, visual only
    dense[1, :, 7, 5:] = 1  # untagged, audio-visual
    dense[1, 1, 9, 0] = 1  # untagged, visual only
    gaps = measure_labels(weak, weak, dense)["annotation_gaps"]
    assert gaps == {
        "weak_labels": 3,
        "weak_without_dense": 1,
        "dense_without_weak": {"audio_only": 1, "visual_only": 1, "audio_visual": 1},
    }
