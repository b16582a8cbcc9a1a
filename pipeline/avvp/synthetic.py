"""A synthetic LLP store, deterministic by seed, with the real annotations' statistics.

The generator writes the release layout of :mod:`pipeline.avvp.store`. Its world:

* **Classes.** The 25 LLP classes, each with a sparse non-negative prototype per feature
  kind (audio, 2D frame, 3D snippet).
* **Videos.** A video has 1, 2 or 3 classes (drawn from ``classes_per_video`` of the real
  train split), drawn without replacement with the real class prior (``class_counts``).
  Each class is an *audio-only*, *visual-only* or *audio-visual* event with the real
  shares (``modality`` of the val and test splits). Each modality it occurs in gets a
  number of separate events (``runs``) with lengths drawn from the real distribution of
  that modality and number of events (``lengths_by_runs``), placed at random, apart from
  each other; lengths that do not fit in 10 segments are drawn again (after
  :data:`_MAX_TRIES` tries, with one event fewer).
  An audio-visual class is drawn again until its audio and visual events share a segment
  (2011 of the 2018 real ones do).
* **Annotation gaps.** The real weak and dense labels were annotated separately and
  disagree (``annotation_gaps``, checked against the real files by
  ``tests/avvp/test_statistics.py``): a few val and test weak labels have no dense event,
  and a few (video, class) pairs have dense events but no weak label. So each drawn class
  keeps its weak label but loses its events with the real share of weak labels without a
  dense event; and each class that keeps its events adds,
  with probability ``untagged / (weak labels with events)``, an untagged class (drawn
  with the class prior among the video's other classes, its kind with the real shares of
  the untagged pairs) that has events but no weak label. Both are drawn from their own
  generator, so the rest of a video's plan does not depend on them. The train split gets
  the same gaps (its rate cannot be measured: the release has no train dense labels).
* **Features.** A segment's audio is ``relu`` of ambient noise plus, per class audible
  in it, ``audio_strength`` times the class's prototype jittered per video; each of its 8
  frames and its snippet likewise for the visible classes (``visual_strength``).

The distributions default to :func:`pipeline.avvp.statistics.reference_statistics`, the
numbers measured on the real annotations; ``bench/llp_synthetic.py`` compares a generated
store's statistics with them. :func:`plan_llp` draws the annotations without rendering.
"""

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.avvp import store as llp
from pipeline.avvp.statistics import KINDS, reference_statistics
from pipeline.io import atomic_dir

_MAX_TRIES = 50
_ACTIVE = 0.1  # fraction of a prototype's dimensions that are non-zero
_JITTER = 0.3  # log-normal sigma of a video's own version of a prototype


@dataclass(frozen=True)
class PlannedVideo:
    """The annotations of one synthetic video.

    Args:
        filename: ``<11-character id>_0_10``.
        events: ``(2, 25, T)`` 0/1 audio and visual events.
        weak: ``(25,)`` 0/1 video-level labels (not always the classes with an event: see
            *Annotation gaps* in the module docstring).
    """

    filename: str
    events: np.ndarray
    weak: np.ndarray


def _probabilities(counts: list[int]) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    return counts / counts.sum()


def _place(rng: np.random.Generator, lengths: list[int]) -> np.ndarray:
    """A ``(T,)`` 0/1 row with runs of ``lengths`` in order, at least one segment apart."""
    free = llp.T - sum(lengths) - (len(lengths) - 1)
    gaps = rng.multinomial(free, np.full(len(lengths) + 1, 1.0 / (len(lengths) + 1)))
    row, t = np.zeros(llp.T, dtype=np.float32), gaps[0]
    for length, gap in zip(lengths, gaps[1:], strict=True):
        row[t : t + length] = 1.0
        t += length + 1 + gap
    return row


def _modality_row(rng: np.random.Generator, stats: dict, modality: str) -> np.ndarray:
    run_p = _probabilities(stats["runs"][modality])
    n = 1 + int(rng.choice(len(run_p), p=run_p))
    while True:  # n = 1 always fits
        length_p = _probabilities(stats["lengths_by_runs"][modality][n - 1])
        for _ in range(_MAX_TRIES):
            lengths = (1 + rng.choice(len(length_p), size=n, p=length_p)).tolist()
            if sum(lengths) + n - 1 <= llp.T:
                return _place(rng, lengths)
        n -= 1


def _class_events(rng: np.random.Generator, stats: dict, kind: str) -> np.ndarray:
    """``(2, T)`` audio and visual events of one class of kind ``kind``."""
    for _ in range(_MAX_TRIES):
        audio = _modality_row(rng, stats, "audio") if kind != "visual_only" else np.zeros(llp.T)
        visual = _modality_row(rng, stats, "visual") if kind != "audio_only" else np.zeros(llp.T)
        if kind != "audio_visual" or (audio * visual).any():
            break
    else:
        visual = audio
    return np.stack([audio, visual]).astype(np.float32)


def _annotation_gaps(
    rng: np.random.Generator, stats: dict, prior: np.ndarray, events: np.ndarray, weak: np.ndarray
) -> None:
    """Drop the events of some weak labels and add untagged classes, in place.

    Args:
        rng: the generator of the gaps.
        stats: the distributions, with ``annotation_gaps`` (:mod:`pipeline.avvp.statistics`).
        prior: ``(25,)`` class prior.
        events: ``(2, 25, T)`` events of the video's weak labels, changed in place.
        weak: ``(25,)`` 0/1 weak labels.
    """
    gaps = stats["annotation_gaps"]
    tagged = np.flatnonzero(weak)
    dropped = rng.random(len(tagged)) < gaps["weak_without_dense"] / gaps["weak_labels"]
    events[:, tagged[dropped]] = 0
    untagged = gaps["dense_without_weak"]
    per_label = sum(untagged.values()) / (gaps["weak_labels"] - gaps["weak_without_dense"])
    n = min(int(rng.binomial(int((~dropped).sum()), per_label)), llp.N_CLASSES - len(tagged))
    others = np.flatnonzero(weak == 0)
    kinds = _probabilities([untagged[kind] for kind in KINDS])
    p = prior[others] / prior[others].sum()
    for c in rng.choice(others, size=n, replace=False, p=p):
        events[:, c] = _class_events(rng, stats, KINDS[rng.choice(len(KINDS), p=kinds)])


def plan_llp(n: int, seed: int, offset: int = 0, stats: dict | None = None) -> list[PlannedVideo]:
    """The annotations of ``n`` synthetic videos (no features).

    Args:
        n: number of videos.
        seed: seed of the draw.
        offset: index of the first video, for its filename. (default: 0)
        stats: the distributions (:mod:`pipeline.avvp.statistics`). (default: the real ones)
    """
    stats = reference_statistics() if stats is None else stats
    rng = np.random.default_rng([seed, offset])
    gap_rng = np.random.default_rng([seed, 3, offset])
    per_video = _probabilities(stats["classes_per_video"])
    prior = _probabilities(stats["class_counts"])
    kinds = _probabilities([stats["modality"][kind] for kind in KINDS])
    videos = []
    for index in range(offset, offset + n):
        k = 1 + int(rng.choice(len(per_video), p=per_video))
        events = np.zeros((2, llp.N_CLASSES, llp.T), dtype=np.float32)
        weak = np.zeros(llp.N_CLASSES, dtype=np.float32)
        for c in rng.choice(llp.N_CLASSES, size=k, replace=False, p=prior):
            events[:, c] = _class_events(rng, stats, KINDS[rng.choice(len(KINDS), p=kinds)])
            weak[c] = 1.0
        _annotation_gaps(gap_rng, stats, prior, events, weak)
        videos.append(PlannedVideo(f"s{index:0{llp.ID_LENGTH - 1}d}_0_10", events, weak))
    return videos


class _World:
    """Sparse non-negative unit prototypes of the 25 classes, per feature kind."""

    def __init__(self, rng: np.random.Generator, dims: dict[str, int]) -> None:
        self.prototypes = {}
        for kind, dim in dims.items():
            protos = np.zeros((llp.N_CLASSES, dim))
            k = max(2, round(_ACTIVE * dim))
            for row in protos:
                row[rng.choice(dim, size=k, replace=False)] = rng.gamma(2.0, 0.5, size=k)
            self.prototypes[kind] = protos / np.linalg.norm(protos, axis=1, keepdims=True)


def _render(
    rng: np.random.Generator,
    world: _World,
    video: PlannedVideo,
    frames: int,
    strength: dict,
    noise: float,
) -> dict[str, np.ndarray]:
    """The feature arrays of one video: ``{kind: (rows, dim)}`` float32."""
    out = {}
    for kind, modality, repeat in (("vggish", 0, 1), ("res152", 1, frames), ("r2plus1d_18", 1, 1)):
        protos = world.prototypes[kind]  # (25, D)
        own = protos * rng.lognormal(0.0, _JITTER, size=protos.shape)  # (25, D)
        active = np.repeat(video.events[modality].T, repeat, axis=0)  # (rows, 25)
        signal = strength[modality] * active @ own  # (rows, D)
        out[kind] = np.maximum(signal + noise * rng.normal(size=signal.shape), 0).astype(np.float32)
    return out


def _write_csv(path: Path, header: tuple[str, ...], rows: list[tuple]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _dense_rows(videos: list[PlannedVideo], modality: int) -> list[tuple]:
    rows = []
    for video in videos:
        for c in range(llp.N_CLASSES):
            padded = np.concatenate([[0], video.events[modality, c], [0]])
            edges = np.flatnonzero(np.diff(padded))
            for onset, offset in zip(edges[::2], edges[1::2], strict=True):
                rows.append((video.filename, int(onset), int(offset), llp.CLASSES[c]))
    return rows


def _labels(video: PlannedVideo) -> str:
    return ",".join(llp.CLASSES[c] for c in np.flatnonzero(video.weak))


def generate_llp(
    out_dir: str | os.PathLike,
    seed: int = 0,
    n_train: int = 400,
    n_val: int = 60,
    n_test: int = 120,
    audio_dim: int = 128,
    frame_dim: int = 2048,
    snippet_dim: int = 512,
    frames: int = 8,
    audio_strength: float = 1.5,
    visual_strength: float = 1.5,
    noise: float = 0.3,
) -> None:
    """Write a synthetic LLP store to ``out_dir``, atomically.

    Args:
        out_dir: the store directory (replaced whole).
        seed: seed of every draw; the same arguments give byte-identical files. (default: 0)
        n_train: train videos (weak labels only). (default: 400)
        n_val: validation videos (weak and dense labels). (default: 60)
        n_test: test videos (weak and dense labels). (default: 120)
        audio_dim: VGGish feature size (release: 128). (default: 128)
        frame_dim: 2D frame feature size (release: 2048, ResNet-152). (default: 2048)
        snippet_dim: 3D snippet feature size (release: 512, R(2+1)D-18). (default: 512)
        frames: frames per segment of the 2D features (release: 8). (default: 8)
        audio_strength: amplitude of an audible class's prototype. (default: 1.5)
        visual_strength: amplitude of a visible class's prototype. (default: 1.5)
        noise: standard deviation of the ambient noise before the ReLU. (default: 0.3)
    """
    counts = {"train": n_train, "val": n_val, "test": n_test}
    dims = {"vggish": audio_dim, "res152": frame_dim, "r2plus1d_18": snippet_dim}
    world = _World(np.random.default_rng([seed, 1]), dims)
    strength = (audio_strength, visual_strength)
    with atomic_dir(out_dir) as tmp:
        for kind in llp.FEATURES:
            (tmp / kind).mkdir()
        offset, evaluated = 0, []
        for split in llp.SPLITS:
            videos = plan_llp(counts[split], seed, offset)
            offset += counts[split]
            rng = np.random.default_rng([seed, 2, offset])
            for video in videos:
                for kind, array in _render(rng, world, video, frames, strength, noise).items():
                    np.save(tmp / kind / f"{llp.video_id(video.filename)}.npy", array)
            rows = [(video.filename, _labels(video)) for video in videos]
            _write_csv(tmp / llp.WEAK_FILES[split], llp.WEAK_HEADER, rows)
            evaluated += videos if split != "train" else []
        for m, modality in enumerate(llp.MODALITIES):
            _write_csv(tmp / llp.DENSE_FILES[modality], llp.DENSE_HEADER, _dense_rows(evaluated, m))
