"""DPNet replicas: videos with a source's sub-event sequence, stitched from other videos.

Implements the Replicate operation of seed 001 §3.4 (Algorithm 1, "Replica Creation").
"""

import numpy as np

from pipeline.augment.compositions import Compositions
from pipeline.augment.database import (
    KINDS,
    Database,
    check_labels,
    decompose_video,
    event_span,
    group_records,
    skip_reason,
)
from pipeline.data.store import BACKGROUND
from pipeline.errors import PipelineError


def _own_segments(row: int, t: int) -> np.ndarray:
    return np.stack([np.full(t, row), np.arange(t)], axis=1)  # (T, 2)


def _pieces(
    row: int,
    video_labels: np.ndarray,
    database: Database,
    groups: dict[tuple[int, int, int], np.ndarray],
    background: int,
) -> list[tuple[int, int, np.ndarray]]:
    """A decomposable video's sub-events ``(first, length, records)``, where ``records``
    are the database records of the same kind, class and length from other videos.

    Found once per video, not per replica: filtering a group costs its size, which grows
    with the training set.
    """
    cls = event_span(video_labels, background)[0]
    pieces = []
    for first, length, kind in decompose_video(video_labels, background):
        candidates = groups.get((kind, cls, length), np.empty(0, dtype=np.int64))
        pieces.append((first, length, candidates[database.video[candidates] != row]))
    return pieces


def _replica(
    row: int,
    t: int,
    pieces: list[tuple[int, int, np.ndarray]],
    database: Database,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, int]:
    """One replica of a decomposable video: ``(sources (T, 2), record (T,), own pieces)``."""
    sources, record = _own_segments(row, t), np.full(t, -1, dtype=np.int64)  # (T, 2), (T,)
    own_pieces = 0
    for first, length, candidates in pieces:
        if not candidates.size:
            own_pieces += 1
            continue
        pick = int(candidates[rng.integers(candidates.size)])
        sources[first : first + length, 0] = database.video[pick]
        sources[first : first + length, 1] = database.start[pick] + np.arange(length)
        record[first : first + length] = pick
    return sources, record, own_pieces


def make_replicas(
    labels: np.ndarray,
    rows: np.ndarray,
    database: Database,
    replicas_per_video: int,
    seed: int,
    background: int = BACKGROUND,
) -> Compositions:
    """Replicas of every training video (seed 001 §3.4, Algorithm 1).

    A replica keeps its source's primary sub-event sequence (:func:`decompose_video`: kinds
    and lengths) and fills each sub-event with a random database record of the same kind,
    class and length from another video, so its labels equal its source's exactly. The
    replicas of the ``k``-th input video are at positions ``k * replicas_per_video + r``,
    ``r < replicas_per_video`` (training can take a different ``r`` each epoch).

    Fallbacks (counted in ``fallbacks``): ``own_pieces``, sub-events with no matching record
    from another video (e.g. a class with one training video, a background run of a length
    no other video of the class has) keep the source's own segments; ``copied_replicas``,
    replicas of a video the database skipped (e.g. the empty-event video) are plain copies
    of it, so that the positions above still hold.

    Args:
        labels: ``(n, T)`` segment classes of the training videos (as given to the database).
        rows: ``(n,)`` their store rows.
        database: the sub-event database (:func:`build_subevent_database`) of these videos.
        replicas_per_video: replicas per video (``>= 0``).
        seed: seed of the random draws.
        background: the background class (default ``28``).

    Raises:
        PipelineError: bad labels, a database that is not a sub-event database, or a
            negative ``replicas_per_video``.
    """
    labels, rows = check_labels(labels, rows, background)
    if database.names != KINDS:
        raise PipelineError(
            f"database: expected a sub-event database {KINDS}, found {database.names}"
        )
    if replicas_per_video < 0:
        raise PipelineError(f"replicas_per_video: expected >= 0, found {replicas_per_video}")
    rng = np.random.default_rng(seed)
    groups = group_records(database)
    n, t = labels.shape
    sources = np.empty((n * replicas_per_video, t, 2), dtype=np.int64)  # (n R, T, 2)
    record = np.full((n * replicas_per_video, t), -1, dtype=np.int64)  # (n R, T)
    fallbacks = {"own_pieces": 0, "copied_replicas": 0}
    for k, (row, video_labels) in enumerate(zip(rows.tolist(), labels, strict=True)):
        copy = skip_reason(video_labels, background, subevents=True) is not None
        pieces = [] if copy else _pieces(row, video_labels, database, groups, background)
        for position in range(k * replicas_per_video, (k + 1) * replicas_per_video):
            if copy:
                sources[position] = _own_segments(row, t)
                fallbacks["copied_replicas"] += 1
                continue
            sources[position], record[position], own = _replica(row, t, pieces, database, rng)
            fallbacks["own_pieces"] += own
    repeated_labels = np.repeat(labels, replicas_per_video, axis=0)  # (n R, T)
    origin = np.repeat(rows, replicas_per_video)  # (n R,)
    return Compositions(sources, repeated_labels, origin, record, fallbacks)
