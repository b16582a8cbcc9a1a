"""The committed real-annotation statistics agree with the real files (drift check)."""

from pathlib import Path

from pipeline.avvp.statistics import measure, reference_statistics


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
