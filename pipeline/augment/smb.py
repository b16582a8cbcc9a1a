"""EDRNet State-Machine-Based (SMB) intra-class video fusion (seed 002, Fig. 4, Algorithm 1).

The state machine (our reading of Fig. 4, which the text does not spell out) walks through
five phases and emits one state of seed 002 Table 1 per step; a state covers as many
segments as its stored sample (1 for ``*_1``, 2 for ``*_2``):

- ``begin`` (nothing emitted yet): ``BG_1``/``BG_2`` → ``pre``; ``START_1``/``START_2`` →
  ``event``. ``START_1`` (a lone foreground sample) is thus only possible at segment 0.
- ``pre`` (background before the event): ``BG_1``/``BG_2`` → ``pre``; ``START_2`` → ``event``.
- ``event``: ``CONTINUE_1``/``CONTINUE_2`` → ``event``; ``END_2`` → ``post``; ``END_1`` →
  ``done``. ``END_1`` (a lone foreground sample) therefore ends the video.
- ``post`` (background after the event): ``BG_1``/``BG_2`` → ``post``.
- ``done``: no state follows.

A sequence is valid when its lengths sum to T (10) and it stops in ``post`` or ``done``.
Every valid sequence has background only outside the event, a start before its continues
before an end, and one contiguous event of at least 2 segments (the start and the end state
each bring one foreground segment), as in AVE. Generation picks, at each step, uniformly
among the available states whose transition still allows a valid completion in the
remaining length (a memoised search), so it never dead-ends.

Where the event lies is a choice the paper leaves open. Walking the machine freely makes
only about 40% of the fused segments foreground (83% in the AVE training split), so
:func:`smb_fusion` first draws the event span of a random training video of the class
(:func:`event_spans`) and lets the machine emit only states whose samples match that
foreground/background layout: fused videos then have the class's own distribution of
event positions and lengths, and the machine still decides how each run is tiled by one-
and two-segment states and which samples fill them.
"""

from functools import cache

import numpy as np

from pipeline.augment.compositions import Compositions
from pipeline.augment.database import STATE_PATTERNS, STATES, Database, group_records
from pipeline.data.store import BACKGROUND, N_CLASSES, T
from pipeline.errors import PipelineError

_BEGIN, _PRE, _EVENT, _POST, _DONE = range(5)
_TRANSITIONS = {
    _BEGIN: (("BG_1", _PRE), ("BG_2", _PRE), ("START_1", _EVENT), ("START_2", _EVENT)),
    _PRE: (("BG_1", _PRE), ("BG_2", _PRE), ("START_2", _EVENT)),
    _EVENT: (("CONTINUE_1", _EVENT), ("CONTINUE_2", _EVENT), ("END_1", _DONE), ("END_2", _POST)),
    _POST: (("BG_1", _POST), ("BG_2", _POST)),
    _DONE: (),
}
_ACCEPTING = (_POST, _DONE)


def _length(state: str) -> int:
    return len(STATE_PATTERNS[state][1])


def _matches(state: str, layout: str | None, position: int) -> bool:
    """Whether ``state``'s sample fits the foreground layout (``F``/``B``) at ``position``."""
    sample = STATE_PATTERNS[state][1]
    return layout is None or layout[position : position + len(sample)] == sample


@cache
def _completes(phase: int, position: int, t: int, available: frozenset[str], layout) -> bool:
    """Whether ``phase`` at ``position`` can reach an accepting phase exactly at ``t``."""
    if position == t:
        return phase in _ACCEPTING
    return any(True for _ in _options(phase, position, t, available, layout))


def _options(phase: int, position: int, t: int, available: frozenset[str], layout):
    """The ``(state, next phase)`` steps from ``phase`` that still allow a valid end."""
    for state, nxt in _TRANSITIONS[phase]:
        end = position + _length(state)
        if (
            state in available
            and end <= t
            and _matches(state, layout, position)
            and _completes(nxt, end, t, available, layout)
        ):
            yield state, nxt


def can_generate(available_states: set[str], t: int = T, layout: str | None = None) -> bool:
    """Whether the machine has a valid ``t``-segment sequence using only ``available_states``.

    Args:
        available_states: states that may be used.
        t: number of segments (default ``10``).
        layout: required foreground layout, ``t`` characters ``F``/``B`` (default ``None``:
            any).
    """
    return _completes(_BEGIN, 0, t, frozenset(available_states), layout)


def generate_state_sequence(
    rng: np.random.Generator,
    available_states: set[str],
    t: int = T,
    layout: str | None = None,
) -> list[str]:
    """Draw a valid ``t``-segment state sequence (seed 002 Algorithm 1 line 5).

    Args:
        rng: the random generator.
        available_states: states that may be used (those with samples for the class).
        t: number of segments (default ``10``).
        layout: required foreground layout, ``t`` characters ``F``/``B`` (default ``None``:
            any valid layout).

    Raises:
        PipelineError: no valid sequence uses only ``available_states`` (and fits ``layout``).
    """
    available = frozenset(available_states)
    if not _completes(_BEGIN, 0, t, available, layout):
        raise PipelineError(
            f"no valid {t}-segment state sequence uses only the states {sorted(available)}"
            + ("" if layout is None else f" with the layout {layout}")
        )
    phase, position, sequence = _BEGIN, 0, []
    while position < t:
        options = list(_options(phase, position, t, available, layout))
        state, phase = options[rng.integers(len(options))]
        position += _length(state)
        sequence.append(state)
    return sequence


def event_spans(labels: np.ndarray, background: int = BACKGROUND) -> dict[int, list[str]]:
    """Foreground layouts (``F``/``B`` strings) of the training videos, by event class.

    Only videos with one contiguous event of one class count (the others are skipped by the
    databases too).

    Args:
        labels: ``(n, T)`` segment classes of the training videos.
        background: the background class (default ``28``).
    """
    spans: dict[int, list[str]] = {}
    for video in np.asarray(labels):
        foreground = np.flatnonzero(video != background)  # (k,)
        if foreground.size == 0 or len(set(video[foreground].tolist())) > 1:
            continue
        if foreground[-1] - foreground[0] + 1 != foreground.size:
            continue
        layout = "".join("F" if c != background else "B" for c in video.tolist())
        spans.setdefault(int(video[foreground[0]]), []).append(layout)
    return spans


def is_valid_state_sequence(sequence: list[str], t: int = T) -> bool:
    """Whether ``sequence`` is a path of the machine whose lengths sum to ``t`` (default 10)."""
    phase, total = _BEGIN, 0
    for state in sequence:
        nxt = dict(_TRANSITIONS[phase]).get(state)
        if nxt is None:
            return False
        phase, total = nxt, total + _length(state)
    return total == t and phase in _ACCEPTING


def state_sequence_labels(
    sequence: list[str], cls: int, background: int = BACKGROUND
) -> np.ndarray:
    """``(T,)`` segment classes of a state sequence for event class ``cls``.

    Args:
        sequence: state names.
        cls: the event class.
        background: the background class (default ``28``).
    """
    samples = "".join(STATE_PATTERNS[state][1] for state in sequence)
    return np.array([cls if s == "F" else background for s in samples], dtype=np.int64)


def _fuse_video(
    sequence: list[str],
    cls: int,
    database: Database,
    groups: dict[tuple[int, int, int], np.ndarray],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill each state with a random record of that state and class: ``(sources, record)``."""
    picks = []
    for state in sequence:
        group = groups[(STATES.index(state), cls, _length(state))]
        picks += [int(group[rng.integers(group.size)])] * _length(state)
    record = np.array(picks, dtype=np.int64)  # (T,)
    offset = np.concatenate([np.arange(_length(state)) for state in sequence])  # (T,)
    sources = np.stack([database.video[record], database.start[record] + offset], axis=1)
    return sources, record  # (T, 2), (T,)


def _available(groups: dict[tuple[int, int, int], np.ndarray], cls: int) -> set[str]:
    return {s for i, s in enumerate(STATES) if (i, cls, _length(s)) in groups}


def _tileable(
    layouts: dict[int, list[str]] | None, cls: int, available: set[str], t: int, fallbacks
) -> list[str]:
    """The layouts of ``cls`` that its available states can tile (fallbacks counted)."""
    if layouts is None:
        return []
    given = layouts.get(cls, [])
    usable = [layout for layout in given if can_generate(available, t, layout)]
    fallbacks["untileable_layouts"] += len(given) - len(usable)
    fallbacks["free_classes"] += not usable
    return usable


def smb_fusion(
    state_database: Database,
    per_class: int,
    seed: int,
    layouts: dict[int, list[str]] | None = None,
    t: int = T,
    n_classes: int = N_CLASSES,
    background: int = BACKGROUND,
) -> Compositions:
    """SMB intra-class video fusion (seed 002 Algorithm 1): ``per_class`` videos per class.

    For each event class in order, ``per_class`` state sequences are drawn from the machine
    (module docstring) restricted to the states that have samples of that class (and, with
    ``layouts``, to the foreground layout of a random training video of the class), and each
    state is filled with a uniformly drawn record of that state and class; the fused labels
    are the sequence's labels (:func:`state_sequence_labels`). Fused videos are class-major.

    Fallbacks (counted in ``fallbacks``): ``missing_state/<STATE>``, classes without any
    sample of that state (the machine avoids the state for them); ``skipped_classes``,
    classes for which no valid sequence remains (e.g. no training video), which get no
    fused video.

    Args:
        state_database: the state database (:func:`build_state_database`).
        per_class: fused videos per class (``>= 0``; 250 in seed 002).
        seed: seed of the random draws.
        layouts: per class, the foreground layouts to draw each fused video's from
            (:func:`event_spans` of the training labels); layouts the class's states cannot
            tile are left out (counted as ``untileable_layouts``), and a class with none
            left walks the machine freely (``free_classes``). ``None`` (default): every
            class walks the machine freely.
        t: segments per video (default ``10``).
        n_classes: number of classes, background included (default ``29``).
        background: the background class (default ``28``).

    Raises:
        PipelineError: a database that is not a state database, or a negative ``per_class``.
    """
    if state_database.names != STATES:
        raise PipelineError(
            f"state_database: expected a state database {STATES}, found {state_database.names}"
        )
    if per_class < 0:
        raise PipelineError(f"per_class: expected >= 0, found {per_class}")
    rng = np.random.default_rng(seed)
    groups = group_records(state_database)
    fallbacks = {"skipped_classes": 0, "untileable_layouts": 0, "free_classes": 0}
    fallbacks |= {f"missing_state/{s}": 0 for s in STATES}
    sources, labels, record = [], [], []
    for cls in (c for c in range(n_classes) if c != background):
        available = _available(groups, cls)
        for state in set(STATES) - available:
            fallbacks[f"missing_state/{state}"] += 1
        if not can_generate(available, t):
            fallbacks["skipped_classes"] += 1
            continue
        choices = _tileable(layouts, cls, available, t, fallbacks)
        for _ in range(per_class):
            layout = choices[rng.integers(len(choices))] if choices else None
            sequence = generate_state_sequence(rng, available, t, layout)
            video_sources, video_record = _fuse_video(sequence, cls, state_database, groups, rng)
            sources.append(video_sources)
            record.append(video_record)
            labels.append(state_sequence_labels(sequence, cls, background))
    n = len(labels)
    return Compositions(
        np.array(sources, dtype=np.int64).reshape(n, t, 2),
        np.array(labels, dtype=np.int64).reshape(n, t),
        np.full(n, -1, dtype=np.int64),
        np.array(record, dtype=np.int64).reshape(n, t),
        fallbacks,
    )
