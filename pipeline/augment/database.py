"""Sub-event (DPNet) and state (EDRNet) databases of the training videos, stored as indices.

A record is ``(video, start, length, kind, cls)``: ``length`` consecutive segments of store
row ``video`` from segment ``start`` on, of sub-event kind / state ``kind`` (an index into
``Database.names``) and event class ``cls``. Features are never copied; a consumer gathers
them by ``(video, start + i)``.

Choices where the papers are vague (the same for both databases):

- A record's class is the class of the video it comes from, background pieces included:
  both augmentations are intra-class (seed 001 Algorithm 1 takes the databases "of event
  type e", seed 002 Algorithm 1 the "training set videos of event type e"), so a
  composition of class ``c`` takes its background from class-``c`` videos too.
- Videos that cannot be decomposed are skipped with a reason code (``Database.skipped``):
  ``empty_event`` (all segments background, as store row 26 of the real AVE training split:
  its class is unknown from segment labels, so it gives no class-indexed background either),
  ``several_classes`` (more than one foreground class), ``non_contiguous`` (the foreground is
  not one block) and, for the sub-event database only, ``one_segment_event`` (a one-segment
  event away from both video borders, whose start and end sub-events would overlap; AVE
  events last at least two segments).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.data.store import BACKGROUND, N_CLASSES
from pipeline.errors import PipelineError
from pipeline.npz import fail, load_npz, save_npz

KINDS = ("start", "continue", "end", "background")
START, CONTINUE, END, BACKGROUND_PIECE = range(len(KINDS))
STATES = ("BG_1", "BG_2", "START_1", "START_2", "CONTINUE_1", "CONTINUE_2", "END_1", "END_2")

# Seed 002 Table 1: state -> (required context before, stored sample, context after) over a
# video written as "^" + one "F" (foreground) or "B" (background) per segment + "$", where
# "^" and "$" are the video borders. START_1 "[FG], last N-1 segments" is "^" + "F".
STATE_PATTERNS = {
    "BG_1": ("", "B", ""),
    "BG_2": ("", "BB", ""),
    "START_1": ("^", "F", ""),
    "START_2": ("", "BF", ""),
    "CONTINUE_1": ("F", "F", "F"),
    "CONTINUE_2": ("F", "FF", "F"),
    "END_1": ("", "F", "$"),
    "END_2": ("", "FB", ""),
}

_COLUMNS = ("video", "start", "length", "kind", "cls")
_SPEC = {
    "names": (1, "U"),
    **{key: (1, "i") for key in _COLUMNS},
    "primary": (1, "b"),
    "skipped_rows": (1, "i"),
    "skipped_reasons": (1, "U"),
}


@dataclass(frozen=True)
class Database:
    """Records of one database as int64 columns, one entry per record.

    Args:
        names: the vocabulary of ``kind``: :data:`KINDS` (sub-events) or :data:`STATES`.
        video: store row of the video a record comes from.
        start: first segment of the record.
        length: number of segments.
        kind: index into ``names``.
        cls: event class of the source video.
        primary: whether the record is a piece of its video's primary decomposition (a
            partition of the video's segments); ``False`` for the extra 1..L-1 continues and
            for every state record (state patterns overlap).
        skipped: ``(store row, reason code)`` of the videos left out.
    """

    names: tuple[str, ...]
    video: np.ndarray  # (m,)
    start: np.ndarray  # (m,)
    length: np.ndarray  # (m,)
    kind: np.ndarray  # (m,)
    cls: np.ndarray  # (m,)
    primary: np.ndarray  # (m,) bool
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.video.size)


def check_labels(
    labels: np.ndarray, rows: np.ndarray, background: int = BACKGROUND
) -> tuple[np.ndarray, np.ndarray]:
    """Validate segment labels and their store rows; return both as int64.

    Args:
        labels: ``(n, T)`` segment classes in ``[0, N_CLASSES)``, ``T >= 2``.
        rows: ``(n,)`` distinct non-negative store rows of the videos.
        background: the background class (default ``28``).

    Raises:
        PipelineError: a wrong shape, dtype or value.
    """
    labels, rows = np.asarray(labels), np.asarray(rows)
    if labels.ndim != 2 or labels.shape[1] < 2 or labels.dtype.kind not in "iu":
        raise PipelineError(
            "labels: expected an integer array of shape (n, T) with T >= 2, "
            f"found {labels.dtype} of shape {labels.shape}"
        )
    if not 0 <= background < N_CLASSES:
        raise PipelineError(f"background: expected a class in [0, {N_CLASSES}), found {background}")
    if labels.size and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise PipelineError(
            f"labels: expected classes in [0, {N_CLASSES}), found [{labels.min()}, {labels.max()}]"
        )
    if rows.shape != labels.shape[:1] or rows.dtype.kind not in "iu":
        raise PipelineError(
            f"rows: expected integers of shape ({labels.shape[0]},), "
            f"found {rows.dtype} of shape {rows.shape}"
        )
    if rows.size and rows.min() < 0:
        raise PipelineError(f"rows: expected non-negative store rows, found {rows.min()}")
    if np.unique(rows).size != rows.size:
        raise PipelineError("rows: expected distinct store rows, found repeated rows")
    return labels.astype(np.int64), rows.astype(np.int64)


def event_span(video_labels: np.ndarray, background: int = BACKGROUND) -> tuple[int, int, int]:
    """``(class, first, end)`` of a video's foreground (``end`` exclusive).

    Meaningful only for a video with foreground; the class is that of its first foreground
    segment.

    Args:
        video_labels: ``(T,)`` segment classes.
        background: the background class (default ``28``).
    """
    foreground = np.flatnonzero(video_labels != background)  # (k,)
    return int(video_labels[foreground[0]]), int(foreground[0]), int(foreground[-1]) + 1


def skip_reason(
    video_labels: np.ndarray, background: int = BACKGROUND, subevents: bool = False
) -> str | None:
    """Why a video is left out of a database (module docstring), or ``None``.

    Args:
        video_labels: ``(T,)`` segment classes.
        background: the background class (default ``28``).
        subevents: also refuse a one-segment event inside the video (default ``False``;
            ``True`` for the sub-event database).
    """
    foreground = video_labels != background  # (T,)
    classes = np.unique(video_labels[foreground])
    if classes.size == 0:
        return "empty_event"
    if classes.size > 1:
        return "several_classes"
    _, first, end = event_span(video_labels, background)
    if not foreground[first:end].all():
        return "non_contiguous"
    if subevents and end - first == 1 and first > 0 and end < video_labels.size:
        return "one_segment_event"
    return None


def decompose_video(
    video_labels: np.ndarray, background: int = BACKGROUND
) -> list[tuple[int, int, int]]:
    """Primary sub-event decomposition of one video (seed 001 §3.4, "Replica Creation").

    The start sub-event is the one-segment context window around the event's first border,
    ``[last BG, first FG]``; the end sub-event is ``[last FG, first BG]``; the continue
    sub-event is the foreground wedged between them; the background before and after form
    one background piece each. An event touching a video border has no border there: a video
    that begins in foreground has no start sub-event (its first piece is the continue), one
    that ends in foreground has no end sub-event, and a fully foreground video is a single
    continue of length T. The pieces partition the video's segments.

    Args:
        video_labels: ``(T,)`` segment classes of a video with one contiguous event.
        background: the background class (default ``28``).

    Returns:
        ``(first segment, length, kind)`` pieces in temporal order, kind indexing
        :data:`KINDS`.

    Raises:
        PipelineError: the video has a :func:`skip_reason` for sub-events.
    """
    reason = skip_reason(video_labels, background, subevents=True)
    if reason is not None:
        raise PipelineError(f"video labels {video_labels.tolist()} cannot be decomposed: {reason}")
    _, first, end = event_span(video_labels, background)
    n = video_labels.size
    continue_first = first + 1 if first > 0 else first
    continue_end = end - 1 if end < n else end
    pieces = []
    if first > 1:
        pieces.append((0, first - 1, BACKGROUND_PIECE))
    if first > 0:
        pieces.append((first - 1, 2, START))
    if continue_end > continue_first:
        pieces.append((continue_first, continue_end - continue_first, CONTINUE))
    if end < n:
        pieces.append((end - 1, 2, END))
    if end + 1 < n:
        pieces.append((end + 1, n - end - 1, BACKGROUND_PIECE))
    return pieces


def continue_windows(first: int, length: int) -> list[tuple[int, int]]:
    """Extra continues of a continue of length ``L``: every window of length 1..L-1.

    Seed 001 §3.4 "decompose a continue sub-event of length L into smaller continue
    sub-events of length 1, 2, ..., L-1"; we take every contiguous window of each length,
    ``L - l + 1`` of length ``l``, i.e. ``(L - 1)(L + 2) / 2`` in all.

    Args:
        first: first segment of the continue.
        length: its length ``L``.

    Returns:
        ``(first segment, length)`` of each window, by length then position.
    """
    return [
        (first + offset, size) for size in range(1, length) for offset in range(length - size + 1)
    ]


def _database(
    names: tuple[str, ...], records: list[tuple[int, ...]], skipped: list[tuple[int, str]]
) -> Database:
    table = np.array(records, dtype=np.int64).reshape(-1, len(_COLUMNS) + 1)  # (m, 6)
    columns = [np.ascontiguousarray(table[:, i]) for i in range(len(_COLUMNS))]
    return Database(names, *columns, primary=table[:, -1].astype(bool), skipped=skipped)


def _usable_videos(
    labels: np.ndarray,
    rows: np.ndarray,
    background: int,
    subevents: bool,
    skipped: list[tuple[int, str]],
):
    """Yield ``(row, video_labels, class)`` of each video a database can use.

    The others are appended to ``skipped`` as ``(row, reason)`` (:func:`skip_reason`).
    """
    labels, rows = check_labels(labels, rows, background)
    for row, video_labels in zip(rows.tolist(), labels, strict=True):
        reason = skip_reason(video_labels, background, subevents=subevents)
        if reason is not None:
            skipped.append((row, reason))
            continue
        yield row, video_labels, event_span(video_labels, background)[0]


def build_subevent_database(
    labels: np.ndarray, rows: np.ndarray, background: int = BACKGROUND
) -> Database:
    """DPNet sub-event database of the training videos (seed 001 §3.4 and Algorithm 1).

    Every video gives the pieces of :func:`decompose_video` (``primary``) and, for its
    continue of length ``L``, the :func:`continue_windows` of length 1..L-1 as extra
    continue records. Pass the training split only.

    Args:
        labels: ``(n, T)`` segment classes of the training videos.
        rows: ``(n,)`` their store rows (kept in ``Database.video``).
        background: the background class (default ``28``).
    """
    records, skipped = [], []
    for row, video_labels, cls in _usable_videos(labels, rows, background, True, skipped):
        for first, length, kind in decompose_video(video_labels, background):
            records.append((row, first, length, kind, cls, True))
            if kind == CONTINUE:
                windows = continue_windows(first, length)
                records += [(row, at, size, CONTINUE, cls, False) for at, size in windows]
    return _database(KINDS, records, skipped)


def video_states(
    video_labels: np.ndarray, background: int = BACKGROUND
) -> list[tuple[int, int, int]]:
    """Every occurrence of each pattern of seed 002 Table 1 in one video.

    Args:
        video_labels: ``(T,)`` segment classes.
        background: the background class (default ``28``).

    Returns:
        ``(first segment, length, state)`` of each stored sample, state indexing
        :data:`STATES`, in :data:`STATES` order then by position.
    """
    text = "^" + "".join("B" if c == background else "F" for c in video_labels.tolist()) + "$"
    found = []
    for state, name in enumerate(STATES):
        before, sample, after = STATE_PATTERNS[name]
        for first in range(video_labels.size - len(sample) + 1):
            at = first + 1 - len(before)  # position of the pattern in ``text``
            if at >= 0 and text.startswith(before + sample + after, at):
                found.append((first, len(sample), state))
    return found


def build_state_database(
    labels: np.ndarray, rows: np.ndarray, background: int = BACKGROUND
) -> Database:
    """EDRNet state database of the training videos (seed 002 Table 1, Algorithm 1 lines 1-3).

    Collects every occurrence of every state pattern (:func:`video_states`) in each video;
    occurrences overlap, so no record is ``primary``. Pass the training split only.

    Args:
        labels: ``(n, T)`` segment classes of the training videos.
        rows: ``(n,)`` their store rows (kept in ``Database.video``).
        background: the background class (default ``28``).
    """
    records, skipped = [], []
    for row, video_labels, cls in _usable_videos(labels, rows, background, False, skipped):
        found = video_states(video_labels, background)
        records += [(row, first, length, state, cls, False) for first, length, state in found]
    return _database(STATES, records, skipped)


def group_records(database: Database) -> dict[tuple[int, int, int], np.ndarray]:
    """Record indices grouped by ``(kind, cls, length)``, each group in record order."""
    if not len(database):
        return {}
    keys = np.stack([database.kind, database.cls, database.length], axis=1)  # (m, 3)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)  # (m,)
    order = np.argsort(inverse, kind="stable")  # (m,)
    groups = np.split(order, np.cumsum(np.bincount(inverse))[:-1])
    return {tuple(key): group for key, group in zip(unique.tolist(), groups, strict=True)}


def counts(database: Database) -> dict[str, int]:
    """Record and skip counts for a metrics JSON (a flat dict of ints).

    Keys: ``records``; ``skipped`` and ``skipped/<reason>``; per kind or state ``<name>``
    (all records) and ``<name>/class_<cc>`` (per class, classes with records only); for
    the sub-event database also ``<name>/primary``.
    """
    out = {"records": len(database), "skipped": len(database.skipped)}
    for _, reason in database.skipped:
        out[f"skipped/{reason}"] = out.get(f"skipped/{reason}", 0) + 1
    for index, name in enumerate(database.names):
        mask = database.kind == index  # (m,)
        out[name] = int(mask.sum())
        if database.names == KINDS:
            out[f"{name}/primary"] = int((mask & database.primary).sum())
        classes, per_class = np.unique(database.cls[mask], return_counts=True)
        pairs = zip(classes.tolist(), per_class.tolist(), strict=True)
        out |= {f"{name}/class_{c:02d}": n for c, n in pairs}
    return out


def save_database(path: str | os.PathLike, database: Database) -> None:
    """Write ``database`` as an ``.npz`` (no pickle), atomically.

    Args:
        path: destination file.
        database: the database.
    """
    rows = [row for row, _ in database.skipped]
    reasons = [reason for _, reason in database.skipped]
    save_npz(
        path,
        {
            "names": np.array(database.names, dtype=str),
            **{key: getattr(database, key) for key in _COLUMNS},
            "primary": database.primary,
            "skipped_rows": np.array(rows, dtype=np.int64),
            "skipped_reasons": np.array(reasons, dtype=str),
        },
    )


def _check_range(path: Path, key: str, values: np.ndarray, low: int, high: int | None) -> None:
    bad = (values < low) | (values >= high if high is not None else False)
    if bad.any():
        wanted = f"values >= {low}" if high is None else f"values in [{low}, {high})"
        raise fail(path, key, wanted, f"{values[bad][0]} at entry {np.flatnonzero(bad)[0]}")


def load_database(path: str | os.PathLike) -> Database:
    """Read a database written by :func:`save_database`.

    Args:
        path: the ``.npz`` file.

    Raises:
        PipelineError: a missing or malformed file, naming the file, key, expected and found.
    """
    path = Path(path)
    data = load_npz(path, _SPEC)
    names = tuple(data["names"].tolist())
    if names not in (KINDS, STATES):
        raise fail(path, "names", f"{KINDS} or {STATES}", str(names))
    m = data["video"].size
    for key in (*_COLUMNS, "primary"):
        if data[key].size != m:
            raise fail(path, key, f"{m} entries (as 'video')", f"{data[key].size}")
    if data["skipped_reasons"].size != data["skipped_rows"].size:
        raise fail(
            path,
            "skipped_reasons",
            f"{data['skipped_rows'].size} entries (as 'skipped_rows')",
            f"{data['skipped_reasons'].size}",
        )
    limits = {"video": (0, None), "start": (0, None), "length": (1, None)}
    limits |= {"kind": (0, len(names)), "cls": (0, N_CLASSES)}
    for key, (low, high) in limits.items():
        _check_range(path, key, data[key], low, high)
    reasons = data["skipped_reasons"].tolist()
    skipped = list(zip(data["skipped_rows"].tolist(), reasons, strict=True))
    columns = [data[key] for key in _COLUMNS]
    return Database(names, *columns, primary=data["primary"], skipped=skipped)
