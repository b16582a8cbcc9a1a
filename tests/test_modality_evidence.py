"""The modality-evidence bench: its pooling by hand, its probes on made-up modalities, and a
run on a tiny store."""

import numpy as np
import pytest

from bench.modality_evidence import PROBES, class_probes, event_mean, evidence_table, format_table
from pipeline.data import store
from pipeline.data.synthetic import generate_synthetic


def test_event_mean_averages_the_event_segments_only():
    features = np.arange(2 * 4 * 1, dtype=np.float32).reshape(2, 4, 1)  # (n, T, D)
    event = np.array([[False, True, True, False], [False, False, False, False]])
    np.testing.assert_array_equal(event_mean(features, event), [[1.5], [0.0]])


def _made_up_store(rng, n=240, n_classes=4):
    """Videos whose event (segments 3 to 7) is of one class, and two modalities: one that
    shows the class in each event segment, and one of noise."""
    classes = rng.integers(n_classes, size=n)
    labels = np.full((n, store.T), store.BACKGROUND)
    labels[:, 3:8] = classes[:, None]
    telling = 0.05 * rng.normal(size=(n, store.T, n_classes))
    telling[:, 3:8] += np.eye(n_classes)[classes][:, None, :]
    noise = rng.normal(size=(n, store.T, n_classes))
    return classes, labels, telling, noise


def test_the_probes_find_the_modality_that_holds_the_class():
    classes, labels, telling, noise = _made_up_store(np.random.default_rng(0))
    rows = np.arange(len(classes))
    told = class_probes(telling, labels, classes, rows[:160], rows[160:])
    blind = class_probes(noise, labels, classes, rows[:160], rows[160:])
    assert list(told) == list(PROBES)
    assert all(accuracy == 1.0 for accuracy in told.values())
    assert all(accuracy < 0.5 for accuracy in blind.values())  # 4 classes: chance 0.25


def test_the_event_segment_probe_scores_segments_of_test_videos_only():
    classes, labels, telling, _ = _made_up_store(np.random.default_rng(1))
    # The test videos' event segments carry the wrong class: only a probe that scores
    # them (not the training videos' segments) sees every answer wrong.
    flipped = telling.copy()
    test = np.arange(160, 240)
    flipped[test, 3:8] = np.roll(flipped[test, 3:8], 1, axis=-1)
    accuracy = class_probes(flipped, labels, classes, np.arange(160), test)["event segment"]
    assert accuracy == 0.0


@pytest.mark.filterwarnings("ignore:The number of unique classes")  # 60 tiny videos
def test_bench_runs_on_a_tiny_store(tiny_store_kwargs, tmp_path):
    plan = generate_synthetic(tmp_path / "ave", **tiny_store_kwargs)
    table = evidence_table(tmp_path / "ave", plan, source_sigma=0.8)
    assert list(table) == ["audio", "visual 7x7 mean", "visual at the source"]
    for row in table.values():
        assert list(row) == list(PROBES)
        assert all(0 <= accuracy <= 100 for accuracy in row.values())
    assert format_table(table).count("\n") == len(table) + 1
