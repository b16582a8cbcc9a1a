"""SMB fusion: the state machine's sequences and the fused videos built from them."""

import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.augment.compositions import Compositions
from pipeline.augment.database import (
    STATES,
    Database,
    build_state_database,
    build_subevent_database,
)
from pipeline.augment.smb import (
    can_generate,
    event_spans,
    generate_state_sequence,
    is_valid_state_sequence,
    smb_fusion,
    state_sequence_labels,
)
from pipeline.errors import PipelineError

B = 28
LENGTH = {state: 1 + state.endswith("_2") for state in STATES}
LETTER = {"BG_1": "b", "BG_2": "b", "START_1": "s", "START_2": "S"}
LETTER |= {"CONTINUE_1": "c", "CONTINUE_2": "c", "END_1": "e", "END_2": "E"}
# Independent oracle: background* then START_2, or START_1 first; continues; END_2 then
# background*, or END_1 last.
ORACLE = re.compile(r"(b*S|s)c*(Eb*|e)")

LABELS = np.array(
    [
        [B, B, 3, 3, 3, 3, B, B, B, B],
        [B, 3, 3, 3, 3, 3, 3, 3, B, B],
        [3] * 10,
        [5, 5, 5, 5, 5, 5, B, B, B, B],  # class 5: never starts after segment 0
        [5] * 10,
    ]
)
ROWS = np.array([10, 11, 12, 13, 14])


def _oracle(sequence: list[str], t: int = 10) -> bool:
    letters = "".join(LETTER[s] for s in sequence)
    return ORACLE.fullmatch(letters) is not None and sum(LENGTH[s] for s in sequence) == t


def _assert_one_event(labels: np.ndarray, cls: int) -> None:
    foreground = np.flatnonzero(labels != B)
    assert foreground.size >= 2 and (labels[foreground] == cls).all()
    assert foreground[-1] - foreground[0] + 1 == foreground.size


@pytest.mark.parametrize(
    ("sequence", "valid"),
    [
        (["START_1", "CONTINUE_2", "CONTINUE_2", "CONTINUE_2", "CONTINUE_2", "END_1"], True),
        (["BG_2", "START_2", "CONTINUE_1", "END_2", "BG_2", "BG_1"], True),
        (["START_2", "END_2", "BG_2", "BG_2", "BG_2"], True),
        (["BG_1", "START_1", "CONTINUE_2", "CONTINUE_2", "CONTINUE_2", "END_2"], False),
        (["START_2", "CONTINUE_2", "CONTINUE_2", "CONTINUE_2", "END_1", "BG_1"], False),
        (["START_2", "CONTINUE_2", "BG_2", "CONTINUE_2", "END_2"], False),
        (["BG_2", "BG_2", "BG_2", "BG_2", "BG_2"], False),
        (["START_1", "CONTINUE_2", "END_1"], False),
        (["CONTINUE_2", "START_2", "CONTINUE_2", "CONTINUE_2", "END_2"], False),
        (["START_2", "CONTINUE_2", "CONTINUE_2", "CONTINUE_2", "END_2", "START_2"], False),
        (["START_1", "CONTINUE_8", "END_1"], False),
    ],
)
def test_hand_written_sequences(sequence, valid):
    assert is_valid_state_sequence(sequence) is valid


def test_validity_agrees_with_an_independent_oracle():
    rng = np.random.default_rng(0)
    for _ in range(3000):
        sequence = list(rng.choice(STATES, size=rng.integers(2, 11)))
        assert is_valid_state_sequence(sequence) == _oracle(sequence)


@pytest.mark.parametrize(
    "available",
    [
        set(STATES),
        set(STATES) - {"START_2"},
        set(STATES) - {"BG_1", "CONTINUE_1"},
        {"START_1", "CONTINUE_1", "END_1"},
        {"START_2", "END_2", "BG_2", "CONTINUE_2"},
    ],
)
def test_generated_sequences_are_valid_and_use_available_states(available):
    for seed in range(200):
        sequence = generate_state_sequence(np.random.default_rng(seed), available)
        assert is_valid_state_sequence(sequence) and _oracle(sequence)
        assert set(sequence) <= available
        assert sum(LENGTH[s] for s in sequence) == 10
        _assert_one_event(state_sequence_labels(sequence, 7), 7)


def test_generation_explores_several_shapes_and_is_deterministic():
    rngs = [np.random.default_rng(seed) for seed in range(50)]
    draw = [tuple(generate_state_sequence(rng, set(STATES))) for rng in rngs]
    assert len(set(draw)) > 20
    assert any(s[0] == "START_1" for s in draw) and any(s[-1] == "END_2" for s in draw)
    again = generate_state_sequence(np.random.default_rng(7), set(STATES))
    assert list(draw[7]) == again


def test_only_full_foreground_without_two_segment_borders():
    available = set(STATES) - {"START_2", "END_2"}
    for seed in range(50):
        sequence = generate_state_sequence(np.random.default_rng(seed), available)
        assert (state_sequence_labels(sequence, 2) == 2).all()


def test_impossible_state_sets_are_refused():
    assert not can_generate({"BG_1", "BG_2"})
    assert not can_generate({"START_1", "END_1"})  # no continue to fill 8 segments
    assert can_generate({"START_1", "END_1"}, t=2)
    with pytest.raises(PipelineError, match="no valid 10-segment state sequence"):
        generate_state_sequence(np.random.default_rng(0), {"START_2", "END_2"})


def test_state_sequence_labels():
    labels = state_sequence_labels(["BG_1", "START_2", "CONTINUE_1", "END_2", "BG_2", "BG_2"], 4)
    np.testing.assert_array_equal(labels, [B, B, 4, 4, 4, B, B, B, B, B])


def _pieces(record: np.ndarray, db: Database) -> list[tuple[int, int]]:
    """``(first segment, record)`` of each piece: runs of a record, cut at its length."""
    pieces, first = [], 0
    while first < record.size:
        pieces.append((first, int(record[first])))
        first += int(db.length[record[first]])
    return pieces


def _assert_fused_videos_match_the_database(fused: Compositions, db: Database) -> None:
    for sources, labels, record in zip(fused.sources, fused.labels, fused.record, strict=True):
        cls = int(labels[labels != B][0])
        pieces = _pieces(record, db)
        sequence = [STATES[db.kind[i]] for _, i in pieces]
        assert is_valid_state_sequence(sequence)
        np.testing.assert_array_equal(labels, state_sequence_labels(sequence, cls))
        for first, i in pieces:
            span = slice(first, first + db.length[i])
            assert db.cls[i] == cls and (record[span] == i).all()
            assert (sources[span, 0] == db.video[i]).all()
            np.testing.assert_array_equal(sources[span, 1], db.start[i] + np.arange(db.length[i]))


def test_fused_videos_are_built_from_matching_records():
    db = build_state_database(LABELS, ROWS)
    fused = smb_fusion(db, per_class=40, seed=0)
    assert len(fused) == 80 and (fused.origin == -1).all()
    assert (fused.labels[:40] != 5).all() and (fused.labels[40:] != 3).all()
    _assert_fused_videos_match_the_database(fused, db)
    true_labels = LABELS[np.searchsorted(ROWS, fused.sources[..., 0]), fused.sources[..., 1]]
    np.testing.assert_array_equal(true_labels, fused.labels)


def test_class_lacking_states_is_handled_and_counted():
    fused = smb_fusion(build_state_database(LABELS, ROWS), per_class=40, seed=1)
    class_5 = fused.labels[40:]  # (40, T)
    assert (class_5[:, 0] == 5).all()  # no START_2, so no background before the event
    assert fused.fallbacks["missing_state/START_2"] == 27  # class 5 and 26 absent classes
    assert fused.fallbacks["missing_state/CONTINUE_1"] == 26
    assert fused.fallbacks["skipped_classes"] == 26


def test_fusion_is_deterministic_by_seed():
    db = build_state_database(LABELS, ROWS)
    first, again = smb_fusion(db, 10, seed=5), smb_fusion(db, 10, seed=5)
    np.testing.assert_array_equal(first.sources, again.sources)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert not np.array_equal(first.sources, smb_fusion(db, 10, seed=6).sources)


def test_bad_arguments_raise_pipeline_error():
    with pytest.raises(PipelineError, match="expected a state database"):
        smb_fusion(build_subevent_database(LABELS, ROWS), 1, 0)
    with pytest.raises(PipelineError, match="per_class: expected >= 0"):
        smb_fusion(build_state_database(LABELS, ROWS), -2, 0)


def test_real_training_split_fusion(ave_reference: Path, reference_segment_labels):
    with h5py.File(ave_reference / "train_order.h5") as h5:
        rows = h5["order"][()].astype(np.int64)
    db = build_state_database(reference_segment_labels[rows], rows)
    fused = smb_fusion(db, per_class=10, seed=0)
    assert len(fused) == 28 * 10 and fused.fallbacks["skipped_classes"] == 0
    _assert_fused_videos_match_the_database(fused, db)
    np.testing.assert_array_equal(
        reference_segment_labels[fused.sources[..., 0], fused.sources[..., 1]], fused.labels
    )


def test_layouts_fix_where_the_event_lies():
    layout = "BBFFFFFBBB"
    rng = np.random.default_rng(0)
    for _ in range(20):
        sequence = generate_state_sequence(rng, set(STATES), layout=layout)
        assert is_valid_state_sequence(sequence)
        labels = state_sequence_labels(sequence, 4)
        assert "".join("F" if c == 4 else "B" for c in labels.tolist()) == layout
    assert not can_generate(set(STATES) - {"START_2"}, layout=layout)  # needs a [BG, FG] start
    with pytest.raises(PipelineError, match="with the layout BBFFFFFBBB"):
        generate_state_sequence(rng, set(STATES) - {"START_2"}, layout=layout)


def test_event_spans_are_the_layouts_of_single_event_videos():
    labels = np.array(
        [
            [3] * 10,
            [28, 28, 3, 3, 3, 28, 28, 28, 28, 28],
            [28] * 10,  # no event
            [5, 5, 28, 5, 5, 28, 28, 28, 28, 28],  # not contiguous
            [5, 5, 6, 6, 28, 28, 28, 28, 28, 28],  # two classes
        ]
    )
    assert event_spans(labels) == {3: ["FFFFFFFFFF", "BBFFFBBBBB"]}


def test_fusion_with_layouts_follows_the_training_layouts(
    ave_reference: Path, reference_segment_labels
):
    with h5py.File(ave_reference / "train_order.h5") as h5:
        order = h5["order"][()]
    labels = reference_segment_labels[order]
    database = build_state_database(labels, order)
    fused = smb_fusion(database, 40, seed=0, layouts=event_spans(labels))
    layouts = event_spans(labels)
    for video in fused.labels[::37]:
        cls = int(video[video != 28][0])
        text = "".join("F" if c != 28 else "B" for c in video.tolist())
        assert text in layouts[cls]
    share = float(np.mean(fused.labels != 28))
    assert abs(share - float(np.mean(labels != 28))) < 0.05
