"""Sub-event and state databases: hand-computed decompositions, real AVE split, files."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.augment.database import (
    BACKGROUND_PIECE,
    CONTINUE,
    END,
    START,
    STATES,
    Database,
    build_state_database,
    build_subevent_database,
    continue_windows,
    counts,
    decompose_video,
    load_database,
    save_database,
    video_states,
)
from pipeline.errors import PipelineError

B = 28
BG, S, C, E = BACKGROUND_PIECE, START, CONTINUE, END

MIDDLE = [B, B, 3, 3, 3, 3, B, B, B, B]
FULL = [3] * 10
AT_START = [3, 3, 3, 3, B, B, B, B, B, B]
AT_END = [B, B, B, B, B, B, 3, 3, 3, 3]
TWO = [B, B, B, 3, 3, B, B, B, B, B]
ONE_AT_START = [3, B, B, B, B, B, B, B, B, B]
EMPTY = [B] * 10


def _states(video: list[int]) -> set[tuple[str, int, int]]:
    return {(STATES[s], first, length) for first, length, s in video_states(np.array(video))}


def _records(db: Database, row: int) -> set[tuple[str, int, int, bool]]:
    mask = db.video == row
    return {
        (db.names[k], first, length, bool(p))
        for first, length, k, p in zip(
            db.start[mask], db.length[mask], db.kind[mask], db.primary[mask], strict=True
        )
    }


@pytest.mark.parametrize(
    ("video", "pieces"),
    [
        (MIDDLE, [(0, 1, BG), (1, 2, S), (3, 2, C), (5, 2, E), (7, 3, BG)]),
        (FULL, [(0, 10, C)]),
        (AT_START, [(0, 3, C), (3, 2, E), (5, 5, BG)]),
        (AT_END, [(0, 5, BG), (5, 2, S), (7, 3, C)]),
        (TWO, [(0, 2, BG), (2, 2, S), (4, 2, E), (6, 4, BG)]),
        (ONE_AT_START, [(0, 2, E), (2, 8, BG)]),
    ],
)
def test_primary_decomposition_is_exact_and_covers_each_segment_once(video, pieces):
    found = decompose_video(np.array(video))
    assert found == pieces
    covered = np.concatenate([np.arange(first, first + length) for first, length, _ in found])
    np.testing.assert_array_equal(covered, np.arange(10))


@pytest.mark.parametrize(
    ("video", "reason"),
    [
        (EMPTY, "empty_event"),
        ([B, 3, 3, 4, 4, B, B, B, B, B], "several_classes"),
        ([B, 3, 3, B, 3, 3, B, B, B, B], "non_contiguous"),
        ([B, B, B, 3, B, B, B, B, B, B], "one_segment_event"),
    ],
)
def test_undecomposable_videos_are_skipped_with_their_reason(video, reason):
    db = build_subevent_database(np.array([video, FULL]), np.array([7, 8]))
    assert db.skipped == [(7, reason)]
    assert set(db.video.tolist()) == {8}
    with pytest.raises(PipelineError, match=reason):
        decompose_video(np.array(video))


def test_one_segment_event_inside_a_video_still_gives_states():
    db = build_state_database(np.array([[B, B, B, 3, B, B, B, B, B, B]]), np.array([0]))
    assert db.skipped == []
    assert ("START_2", 2, 2, False) in _records(db, 0)
    assert ("END_2", 3, 2, False) in _records(db, 0)


def test_continue_windows_are_every_shorter_window():
    assert continue_windows(4, 3) == [(4, 1), (5, 1), (6, 1), (4, 2), (5, 2)]
    assert continue_windows(0, 1) == []
    for length in range(1, 11):
        assert len(continue_windows(0, length)) == (length - 1) * (length + 2) // 2


def test_subevent_records_of_a_video_with_borders():
    db = build_subevent_database(np.array([MIDDLE]), np.array([5]))
    primary = {("background", 0, 1), ("start", 1, 2), ("continue", 3, 2)}
    primary |= {("end", 5, 2), ("background", 7, 3)}
    extra = {("continue", 3, 1), ("continue", 4, 1)}
    expected = {(*r, True) for r in primary} | {(*r, False) for r in extra}
    assert _records(db, 5) == expected
    assert len(db) == 7
    assert set(db.cls.tolist()) == {3}


def test_full_foreground_video_is_one_continue_plus_54_windows():
    db = build_subevent_database(np.array([FULL]), np.array([0]))
    assert counts(db)["continue"] == 1 + 54
    assert counts(db)["continue/primary"] == 1
    assert _records(db, 0) >= {("continue", 0, 10, True), ("continue", 0, 9, False)}


@pytest.mark.parametrize(
    ("video", "expected"),
    [
        (
            MIDDLE,
            {("BG_1", t, 1) for t in (0, 1, 6, 7, 8, 9)}
            | {("BG_2", t, 2) for t in (0, 6, 7, 8)}
            | {("START_2", 1, 2), ("CONTINUE_1", 3, 1), ("CONTINUE_1", 4, 1)}
            | {("CONTINUE_2", 3, 2), ("END_2", 5, 2)},
        ),
        (
            FULL,
            {("START_1", 0, 1), ("END_1", 9, 1)}
            | {("CONTINUE_1", t, 1) for t in range(1, 9)}
            | {("CONTINUE_2", t, 2) for t in range(1, 8)},
        ),
        (
            AT_START,
            {("START_1", 0, 1), ("CONTINUE_1", 1, 1), ("CONTINUE_1", 2, 1)}
            | {("CONTINUE_2", 1, 2), ("END_2", 3, 2)}
            | {("BG_1", t, 1) for t in range(4, 10)}
            | {("BG_2", t, 2) for t in range(4, 9)},
        ),
        (
            AT_END,
            {("BG_1", t, 1) for t in range(6)}
            | {("BG_2", t, 2) for t in range(5)}
            | {("START_2", 5, 2), ("CONTINUE_1", 7, 1), ("CONTINUE_1", 8, 1)}
            | {("CONTINUE_2", 7, 2), ("END_1", 9, 1)},
        ),
        (
            TWO,
            {("BG_1", t, 1) for t in (0, 1, 2, 5, 6, 7, 8, 9)}
            | {("BG_2", t, 2) for t in (0, 1, 5, 6, 7, 8)}
            | {("START_2", 2, 2), ("END_2", 4, 2)},
        ),
    ],
)
def test_state_patterns_are_found_exactly(video, expected):
    assert _states(video) == expected


def test_state_database_records_carry_video_row_and_class():
    labels = np.array([MIDDLE, [7] * 10, EMPTY])
    db = build_state_database(labels, np.array([10, 11, 12]))
    assert db.skipped == [(12, "empty_event")]
    assert set(zip(db.video.tolist(), db.cls.tolist(), strict=True)) == {(10, 3), (11, 7)}
    assert not db.primary.any()
    assert len(db) == len(_states(MIDDLE)) + len(_states([7] * 10))


def _assert_primary_coverage(db: Database, rows: np.ndarray) -> None:
    """Each segment of each kept video lies in exactly one primary record."""
    cover = np.zeros((rows.max() + 1, 10), dtype=np.int64)  # (rows, T)
    for offset in range(10):
        inside = db.primary & (offset < db.length)  # (m,)
        np.add.at(cover, (db.video[inside], db.start[inside] + offset), 1)
    expected = np.zeros_like(cover)  # (rows, T)
    expected[rows] = 1
    expected[[row for row, _ in db.skipped]] = 0
    np.testing.assert_array_equal(cover, expected)


def _assert_counts_consistent(db: Database) -> None:
    table = counts(db)
    assert sum(table[name] for name in db.names) == table["records"] == len(db)
    for index, name in enumerate(db.names):
        per_class = sum(v for k, v in table.items() if k.startswith(f"{name}/class_"))
        assert per_class == table[name] == int((db.kind == index).sum())
    assert table["skipped"] == len(db.skipped)
    assert all(isinstance(v, int) for v in table.values())


def test_records_lie_inside_their_video_with_the_right_labels():
    labels = np.array([MIDDLE, FULL, AT_START, AT_END, TWO, ONE_AT_START, EMPTY])
    rows = np.arange(100, 107)
    _assert_primary_coverage(build_subevent_database(labels, rows), rows)
    for db in (build_subevent_database(labels, rows), build_state_database(labels, rows)):
        _assert_counts_consistent(db)
        assert (db.start >= 0).all() and (db.start + db.length <= 10).all()
        source = labels[db.video - 100]  # (m, T)
        first = source[np.arange(len(db)), db.start]  # (m,)
        last = source[np.arange(len(db)), db.start + db.length - 1]  # (m,)
        kind = np.array(db.names)[db.kind]  # (m,)
        starts = np.isin(kind, ["start", "START_2"])
        ends = np.isin(kind, ["end", "END_2"])
        assert (first[starts] == B).all() and (last[starts] == db.cls[starts]).all()
        assert (first[ends] == db.cls[ends]).all() and (last[ends] == B).all()


@pytest.fixture(scope="module")
def real_train(ave_reference: Path, reference_segment_labels: np.ndarray):
    with h5py.File(ave_reference / "train_order.h5") as h5:
        rows = h5["order"][()].astype(np.int64)
    return reference_segment_labels[rows], rows


def test_real_training_split_databases(real_train):
    labels, rows = real_train
    subevents = build_subevent_database(labels, rows)
    states = build_state_database(labels, rows)
    for db in (subevents, states):
        assert db.skipped == [(26, "empty_event")]
        _assert_counts_consistent(db)
    _assert_primary_coverage(subevents, rows)
    sub, state = counts(subevents), counts(states)
    kept = np.isin(rows, [26], invert=True)
    begins_fg, ends_fg = labels[kept, 0] != B, labels[kept, -1] != B
    assert sub["start"] == state["START_2"] == int((~begins_fg).sum())
    assert sub["end"] == state["END_2"] == int((~ends_fg).sum())
    assert state["START_1"] == int(begins_fg.sum())
    assert state["END_1"] == int(ends_fg.sum())
    assert state["BG_1"] == int((labels[kept] == B).sum())
    continues = (labels[kept] != B).sum(axis=1) - ~begins_fg - ~ends_fg  # (n,) lengths L
    assert sub["continue/primary"] == int((continues > 0).sum())
    assert sub["continue"] == int((continues * (continues + 1) // 2).sum())


def test_save_and_load_round_trip(tmp_path):
    labels = np.array([MIDDLE, FULL, EMPTY])
    for db in (
        build_subevent_database(labels, np.array([0, 1, 2])),
        build_state_database(labels, np.array([0, 1, 2])),
    ):
        path = tmp_path / "db.npz"
        save_database(path, db)
        loaded = load_database(path)
        assert loaded.names == db.names and loaded.skipped == db.skipped
        for key in ("video", "start", "length", "kind", "cls", "primary"):
            np.testing.assert_array_equal(getattr(loaded, key), getattr(db, key))
        assert loaded.primary.dtype == bool
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db.npz"]


def _saved_arrays(path: Path) -> dict[str, np.ndarray]:
    save_database(path, build_subevent_database(np.array([MIDDLE]), np.array([0])))
    with np.load(path) as npz:
        return dict(npz)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("kind"), "key 'kind'.*expected the key to be present"),
        (lambda a: a.update(kind=a["kind"].astype(float)), "key 'kind'.*integer dtype.*float64"),
        (lambda a: a.update(cls=a["cls"][:-1]), "key 'cls'.*7 entries.*found 6"),
        (lambda a: a.update(kind=a["kind"] + 4), "key 'kind'.*values in \\[0, 4\\)"),
        (lambda a: a.update(length=a["length"] * 0), "key 'length'.*values >= 1"),
        (lambda a: a.update(names=np.array(["a", "b"])), "key 'names'.*expected"),
        (lambda a: a.update(video=np.array([None] * 7)), "key 'video'.*no pickle"),
    ],
)
def test_malformed_database_file_is_reported(tmp_path, change, message):
    path = tmp_path / "db.npz"
    arrays = _saved_arrays(path)
    change(arrays)
    np.savez(path, **arrays)
    with pytest.raises(PipelineError, match=message) as info:
        load_database(path)
    assert str(path) in str(info.value)


def test_unreadable_or_missing_database_file(tmp_path):
    with pytest.raises(PipelineError, match="file not found"):
        load_database(tmp_path / "absent.npz")
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(PipelineError, match="expected an .npz archive"):
        load_database(tmp_path / "text.npz")


@pytest.mark.parametrize(
    ("labels", "rows", "message"),
    [
        (np.zeros((2, 10, 29), dtype=np.int64), np.arange(2), "labels: expected .* shape"),
        (np.zeros((2, 10)), np.arange(2), "labels: expected an integer"),
        (np.full((2, 10), 29), np.arange(2), r"labels: expected classes in \[0, 29\)"),
        (np.full((2, 10), -1), np.arange(2), r"found \[-1, -1\]"),
        (np.full((2, 10), 3), np.arange(3), r"rows: expected integers of shape \(2,\)"),
        (np.full((2, 10), 3), np.array([4, 4]), "rows: expected distinct"),
        (np.full((2, 10), 3), np.array([-1, 4]), "rows: expected non-negative"),
    ],
)
def test_bad_inputs_raise_pipeline_error(labels, rows, message):
    for build in (build_subevent_database, build_state_database):
        with pytest.raises(PipelineError, match=message):
            build(labels, rows)
