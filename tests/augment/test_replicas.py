"""Replicas: same labels as the source, pieces from other videos, fallbacks, files."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.augment.compositions import Compositions, load_compositions, save_compositions
from pipeline.augment.database import (
    build_state_database,
    build_subevent_database,
    decompose_video,
    skip_reason,
)
from pipeline.augment.replicas import make_replicas
from pipeline.errors import PipelineError

B = 28
LABELS = np.array(
    [
        [B, B, 3, 3, 3, 3, B, B, B, B],
        [B, B, 3, 3, 3, 3, B, B, B, B],
        [B, 3, 3, 3, 3, 3, B, B, B, B],
        [3] * 10,
        [3] * 10,
        [B, B, B, B, B, B, 5, 5, 5, 5],  # the only class-5 video
        [B] * 10,  # empty event: skipped by the database
    ]
)
ROWS = np.array([40, 41, 42, 43, 44, 45, 46])
R = 3


def _make(seed: int = 0, replicas: int = R) -> tuple[Compositions, object]:
    db = build_subevent_database(LABELS, ROWS)
    return make_replicas(LABELS, ROWS, db, replicas, seed), db


def _true_labels(sources: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Labels of the store segments named by ``sources`` (..., 2)."""
    position = {row: i for i, row in enumerate(rows.tolist())}
    index = np.vectorize(position.__getitem__)(sources[..., 0])
    return labels[index, sources[..., 1]]


def test_replica_labels_and_origin_equal_the_source():
    replicas, _ = _make()
    assert len(replicas) == len(ROWS) * R
    for k, row in enumerate(ROWS.tolist()):
        for r in range(R):
            assert replicas.origin[k * R + r] == row
            np.testing.assert_array_equal(replicas.labels[k * R + r], LABELS[k])
    np.testing.assert_array_equal(_true_labels(replicas.sources, LABELS, ROWS), replicas.labels)


def test_each_piece_is_a_matching_record_from_another_video():
    replicas, db = _make()
    for k, row in enumerate(ROWS[:5].tolist()):  # class-3 videos: every piece has a match
        pieces = decompose_video(LABELS[k])
        for position in range(k * R, (k + 1) * R):
            for first, length, kind in pieces:
                piece = replicas.sources[position, first : first + length]  # (L, 2)
                records = replicas.record[position, first : first + length]  # (L,)
                assert (records == records[0]).all() and records[0] >= 0
                i = records[0]
                assert (db.kind[i], db.cls[i], db.length[i]) == (kind, 3, length)
                assert (piece[:, 0] == db.video[i]).all() and db.video[i] != row
                np.testing.assert_array_equal(piece[:, 1], db.start[i] + np.arange(length))


def test_single_video_class_and_skipped_video_fall_back_and_are_counted():
    replicas, _ = _make()
    own = np.stack([np.repeat(ROWS[:, None], 10, axis=1), np.tile(np.arange(10), (7, 1))], -1)
    for k in (5, 6):
        for position in range(k * R, (k + 1) * R):
            np.testing.assert_array_equal(replicas.sources[position], own[k])
            assert (replicas.record[position] == -1).all()
    # class 5: background and start have no other video of the class, nor has its continue
    assert replicas.fallbacks == {"own_pieces": 3 * R, "copied_replicas": R}
    assert skip_reason(LABELS[6]) == "empty_event"


def test_replicas_vary_and_are_deterministic_by_seed():
    first, _ = _make(seed=3)
    again, _ = _make(seed=3)
    other, _ = _make(seed=4)
    np.testing.assert_array_equal(first.sources, again.sources)
    np.testing.assert_array_equal(first.record, again.record)
    assert not np.array_equal(first.sources, other.sources)
    assert len({first.sources[r].tobytes() for r in range(R)}) > 1  # replicas of row 40


def test_zero_replicas_give_an_empty_pool():
    replicas, _ = _make(replicas=0)
    assert replicas.sources.shape == (0, 10, 2) and replicas.labels.shape == (0, 10)


def test_bad_arguments_raise_pipeline_error():
    db = build_subevent_database(LABELS, ROWS)
    with pytest.raises(PipelineError, match="sub-event database"):
        make_replicas(LABELS, ROWS, build_state_database(LABELS, ROWS), 1, 0)
    with pytest.raises(PipelineError, match="replicas_per_video: expected >= 0"):
        make_replicas(LABELS, ROWS, db, -1, 0)
    with pytest.raises(PipelineError, match="labels: expected"):
        make_replicas(LABELS.astype(float), ROWS, db, 1, 0)


def test_real_training_split_replicas(ave_reference: Path, reference_segment_labels):
    with h5py.File(ave_reference / "train_order.h5") as h5:
        rows = h5["order"][()].astype(np.int64)
    labels = reference_segment_labels[rows]
    replicas = make_replicas(labels, rows, build_subevent_database(labels, rows), 1, 0)
    np.testing.assert_array_equal(replicas.labels, labels)
    np.testing.assert_array_equal(_true_labels(replicas.sources, labels, rows), labels)
    assert replicas.fallbacks["copied_replicas"] == 1  # store row 26, the empty event
    from_source = replicas.sources[..., 0] == replicas.origin[:, None]  # (n, T)
    assert (from_source == (replicas.record < 0)).all()


def test_compositions_round_trip_and_malformed_file(tmp_path):
    replicas, _ = _make()
    path = tmp_path / "replicas.npz"
    save_compositions(path, replicas)
    loaded = load_compositions(path)
    for key in ("sources", "labels", "origin", "record"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(replicas, key))
    assert loaded.fallbacks == replicas.fallbacks
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["origin"] = arrays["origin"][:-1]
    np.savez(path, **arrays)
    with pytest.raises(PipelineError, match=r"key 'origin'.*shape \(21,\), found shape \(20,\)"):
        load_compositions(path)
