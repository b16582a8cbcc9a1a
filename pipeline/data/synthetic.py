"""A synthetic, AVE-shaped dataset that can only be solved by doing AVEL properly.

The generator writes the official store layout of docs/design.md §3 from a seed. Its world:

* **Classes.** 28 event classes, each with a sparse non-negative audio prototype and a
  visual prototype, in the proportions of the real annotations (:data:`AVE_CLASS_COUNTS`,
  60 to 188 videos a class). Confusable pairs (:data:`CONFUSABLE_PAIRS`: helicopter /
  airplane, bus / truck, motorcycle / race car, male / female speech, by their AVE class
  indices) share most of their active components in both modalities.
* **Videos.** Each video has one class ``c`` and one contiguous audio-visual event of at
  least 2 segments: a share ``full_fraction`` of them span all 10 segments, the others'
  ``[start, end)`` is drawn with the frequencies of the real annotations' partial windows
  (:data:`AVE_PARTIAL_WINDOWS`).
  A segment is foreground (label ``c``) exactly when ``c`` is both audible and visible.
* **Background segments** of a partial video carry, per region before / after the event,
  one of: ``c`` audible only, ``c`` visible only, another class audible or visible, or
  nothing but ambience — so neither modality alone decides the label.
* **Ambiguous instances.** A video's own sound and look of ``c`` mix in a *confuser*
  class ``c'`` with weight ``u * audio_confusion`` (audio) and ``u * visual_confusion``
  (visual), ``u`` uniform in [0, 1): where the weight passes 1/2 that modality points to
  ``c'``. With probability ``shared_confusion`` both modalities share ``c'`` and ``u`` (a
  class that sounds *and* looks like another); otherwise each draws its own, so that one
  modality can resolve what the other leaves ambiguous. This is what makes single-modality
  models worse than audio-visual ones by a margin, as in seed 002 Table 4.
* **Borders.** The first segment of an event that starts after 0 carries an onset
  signature, and the last segment of an event that ends before 10 an offset signature, in
  both modalities (in the visual map at the source's cell), with amplitude
  ``border_strength`` relative to the source.
* **Audio** is ``relu`` of a scaled instance prototype plus ambient noise: non-negative and
  sparse like VGGish outputs (about 2/3 zeros).
* **Visual** maps are ``relu`` of texture noise, a per-video scene, ``clutter`` silent
  objects of other classes standing still at their own cells, and the sound source, each
  object drawn as a Gaussian footprint at a location of the ``map_size x map_size`` grid;
  the source drifts by at most one cell per segment. The source's footprint is wider
  (``source_sigma``) than the clutter's: a sounding object fills much of a frame in AVE,
  so averaging the map dilutes it only moderately and attending to the source (as
  audio-guided attention learns to) gains a few points, as in Tian et al.'s ablation
  (``bench/calibration.py`` measures both).
* **Background-only videos** of the weak setting contain audible-only and visible-only
  events that never co-occur.

Three ``numpy`` generators spawned from ``seed`` draw the world (prototypes, scenes), the
plan (classes, windows, background regions, confusers, object positions:
:func:`plan_synthetic`) and the rendered noise: the same arguments give byte-identical
arrays, and the plan can be recomputed without rendering.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from pipeline.data import store
from pipeline.data.annotations import one_hot
from pipeline.io import atomic_path

N_EVENT_CLASSES = store.N_CLASSES - 1
# The real AVE annotations (Annotations.txt of the release, 4143 videos), written once
# here and checked against the file by tests/data/test_synthetic.py when it is present:
# videos per class, in the class order of the release (order of first appearance) ...
AVE_CLASS_COUNTS = (
    188, 176, 171, 184, 188, 175, 178, 187, 172, 163, 182, 138, 102, 99,
    186, 176, 160, 183, 100, 83, 69, 160, 60, 64, 180, 109, 154, 156,
)  # fmt: skip
# ... and videos per event window [start, end) other than the whole video (2750 videos)
# and the one empty event (training row 26): most partial events touch an end of the video.
AVE_PARTIAL_WINDOWS = {
    (0, 2): 54, (0, 3): 71, (0, 4): 83, (0, 5): 74, (0, 6): 91, (0, 7): 56, (0, 8): 49,
    (0, 9): 21, (1, 3): 9, (1, 4): 11, (1, 5): 8, (1, 6): 4, (1, 7): 9, (1, 8): 7,
    (1, 9): 2, (1, 10): 74, (2, 4): 9, (2, 5): 7, (2, 6): 11, (2, 7): 8, (2, 8): 11,
    (2, 9): 4, (2, 10): 60, (3, 5): 20, (3, 6): 15, (3, 7): 8, (3, 8): 6, (3, 9): 7,
    (3, 10): 72, (4, 6): 10, (4, 7): 12, (4, 8): 7, (4, 9): 6, (4, 10): 82, (5, 7): 9,
    (5, 8): 7, (5, 9): 8, (5, 10): 98, (6, 8): 17, (6, 9): 5, (6, 10): 92, (7, 9): 10,
    (7, 10): 92, (8, 10): 76,
}  # fmt: skip
AVE_FULL_VIDEOS = 2750
AVE_BACKGROUND_VIDEOS = 178  # background-only videos of the weak setting (labels_noisy.h5)
AVE_TRAIN_VIDEOS = 3339
# helicopter / airplane, bus / truck, motorcycle / race car, male / female speech
CONFUSABLE_PAIRS = ((6, 3), (20, 11), (13, 4), (1, 5))
_SHARED_FRACTION = 0.75  # share of a confusable pair's prototype that is common to both
_AUDIO_ACTIVE = 0.12  # fraction of audio dims active in a class prototype
_VISUAL_ACTIVE = 0.10  # fraction of visual channels active in a class prototype
_N_SCENES = 12
_SCENE_STRENGTH = 0.5
_FOOTPRINT_SIGMA = 0.8
_VISUAL_GAIN = 10.0  # scale of the visual maps (VGG-19 pool5 values are of order 1)
_TEXTURE_MEAN = -0.5  # mean of the visual texture before the ReLU (mostly zeros, as VGG maps)
_INSTANCE_JITTER = 0.35  # log-normal sigma of a video's own version of a prototype
_REGION_KINDS = ("audible_only", "visible_only", "distractor", "ambient")
_REGION_PROBS = (0.3, 0.3, 0.15, 0.25)
_KEEP_REGION_KIND = 0.85  # a region's kind holds per segment with this probability
MODALITIES = ("audio", "visual")


def _sparse_prototypes(
    rng: np.random.Generator, n: int, dim: int, active: float, pairs: tuple = ()
) -> np.ndarray:
    """Non-negative sparse unit prototypes; each ``(a, b)`` of ``pairs`` shares most mass."""
    k = max(2, round(active * dim))
    protos = np.zeros((n, dim), dtype=np.float64)  # (K, D)
    for row in protos:
        row[rng.choice(dim, size=k, replace=False)] = rng.gamma(2.0, 0.5, size=k)
    for a, b in pairs:
        protos[b] = _SHARED_FRACTION * protos[a] + (1 - _SHARED_FRACTION) * protos[b]
    return protos / np.linalg.norm(protos, axis=1, keepdims=True)


def _event_windows(rng: np.random.Generator, n: int, full_fraction: float) -> np.ndarray:
    """``(n, 2)`` event ``[start, end)`` windows, exactly ``round(full_fraction * n)`` full.

    The others are drawn from the partial windows of the real annotations with their
    frequencies (:data:`AVE_PARTIAL_WINDOWS`: 2 to 9 segments, mean 4.9; 36 % start the
    video and 46 % end it), so that with AVE's share of full videos (0.664) about 83 % of
    segments are foreground, as in AVE.
    """
    partial = np.array(list(AVE_PARTIAL_WINDOWS))  # (W, 2)
    weights = np.array(list(AVE_PARTIAL_WINDOWS.values()), dtype=np.float64)
    windows = partial[rng.choice(len(partial), size=n, p=weights / weights.sum())]
    windows[rng.permutation(n)[: round(full_fraction * n)]] = (0, store.T)
    return windows


def _split_classes(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n,)`` classes of a split in the proportions of :data:`AVE_CLASS_COUNTS`.

    Each class gets the floor of its share of ``n``; the remaining videos go to the
    largest remainders; the order is random.
    """
    share = np.array(AVE_CLASS_COUNTS, dtype=np.float64) / sum(AVE_CLASS_COUNTS) * n  # (K,)
    counts = np.floor(share).astype(int)
    counts[np.argsort(counts - share, kind="stable")[: n - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(N_EVENT_CLASSES), counts))


def _path(rng: np.random.Generator, map_size: int) -> np.ndarray:
    """``(T, 2)`` cells of a source that drifts at most one cell per segment."""
    pos = rng.integers(map_size, size=2)
    cells = []
    for _ in range(store.T):
        pos = np.clip(pos + rng.integers(-1, 2, size=2) * (rng.random() < 0.3), 0, map_size - 1)
        cells.append(pos)
    return np.stack(cells)


def footprint(cell: np.ndarray, map_size: int, sigma: float = _FOOTPRINT_SIGMA) -> np.ndarray:
    """``(H, W)`` Gaussian footprint of an object centred on ``cell``, peak 1, width ``sigma``."""
    grid = np.arange(map_size, dtype=np.float64)
    dist2 = (grid[:, None] - cell[0]) ** 2 + (grid[None, :] - cell[1]) ** 2
    return np.exp(-dist2 / (2 * sigma**2))


class _World:
    """Fixed class prototypes, scenes and border signatures of one synthetic dataset."""

    def __init__(self, rng: np.random.Generator, audio_dim: int, visual_dim: int) -> None:
        n = N_EVENT_CLASSES
        self.audio = _sparse_prototypes(rng, n, audio_dim, _AUDIO_ACTIVE, CONFUSABLE_PAIRS)
        self.visual = _sparse_prototypes(rng, n, visual_dim, _VISUAL_ACTIVE, CONFUSABLE_PAIRS)
        self.scenes = np.abs(rng.normal(0, 1, size=(_N_SCENES, visual_dim)))
        self.scenes /= np.linalg.norm(self.scenes, axis=1, keepdims=True)
        self.audio_borders = _sparse_prototypes(rng, 2, audio_dim, _AUDIO_ACTIVE)  # onset, offset
        self.visual_borders = _sparse_prototypes(rng, 2, visual_dim, _VISUAL_ACTIVE)


class SyntheticVideo:
    """What one synthetic video holds, segment by segment, before rendering.

    Attributes:
        cls: the video's class ``c`` (the one heard and seen; for a background-only video,
            the class heard or seen first).
        audible, visible: ``(T,)`` class heard / seen in each segment, ``-1`` for none.
        onset, offset: ``(T,)`` bool, the event's first / last segment when inside the video.
        path: ``(T, 2)`` map cell of the sound source in each segment.
        clutter: ``[(class, (row, col))]`` silent objects standing still in the map.
        confusers: per modality, ``(c', weight)``: the class mixed into the video's own
            version of ``c`` and its weight.
    """

    def __init__(self, window: tuple[int, int] | None, cls: int) -> None:
        self.cls = cls
        self.audible = np.full(store.T, -1)
        self.visible = np.full(store.T, -1)
        self.onset = np.zeros(store.T, dtype=bool)
        self.offset = np.zeros(store.T, dtype=bool)
        self.path = np.zeros((store.T, 2), dtype=np.int64)
        self.clutter: list[tuple[int, np.ndarray]] = []
        self.confusers = {m: (cls, 0.0) for m in MODALITIES}
        if window is not None:
            start, end = window
            self.audible[start:end] = cls
            self.visible[start:end] = cls
            self.onset[start] = start > 0
            self.offset[end - 1] = end < store.T

    def labels(self) -> np.ndarray:
        """Foreground exactly where one class is both audible and visible."""
        both = (self.audible == self.visible) & (self.audible >= 0)
        return np.where(both, self.audible, store.BACKGROUND)


def _other_class(rng: np.random.Generator, cls: int) -> int:
    return int((cls + rng.integers(1, N_EVENT_CLASSES)) % N_EVENT_CLASSES)


def _fill_region(
    rng: np.random.Generator, video: SyntheticVideo, segments: range, cls: int
) -> None:
    """Give a background region one kind of unimodal or distractor content."""
    kind = _REGION_KINDS[rng.choice(len(_REGION_KINDS), p=_REGION_PROBS)]
    other = _other_class(rng, cls)
    for t in segments:
        if rng.random() > _KEEP_REGION_KIND or kind == "ambient":
            continue
        if kind == "audible_only":
            video.audible[t] = cls
        elif kind == "visible_only":
            video.visible[t] = cls
        elif rng.random() < 0.5:
            video.audible[t] = other
        else:
            video.visible[t] = other


def _event_video(rng: np.random.Generator, window: tuple[int, int], cls: int) -> SyntheticVideo:
    video = SyntheticVideo(window, cls)
    _fill_region(rng, video, range(0, window[0]), cls)
    _fill_region(rng, video, range(window[1], store.T), cls)
    return video


def _background_video(rng: np.random.Generator) -> SyntheticVideo:
    """Audible-only and visible-only events that never co-occur (weak-setting negatives)."""
    cls = int(rng.integers(N_EVENT_CLASSES))
    video = SyntheticVideo(None, cls)
    cut = int(rng.integers(1, store.T))
    if rng.random() < 0.5:  # the same class heard, then seen (or the reverse)
        video.audible[:cut], video.visible[cut:] = cls, cls
    else:  # one class heard while another is seen
        video.audible[:], video.visible[:] = cls, _other_class(rng, cls)
    keep = rng.random(store.T) < _KEEP_REGION_KIND
    video.audible[~keep] = -1
    return video


def _place_objects(
    rng: np.random.Generator, video: SyntheticVideo, map_size: int, clutter: int, mixing: dict
) -> None:
    """Draw the video's confusers, its source path and its clutter objects.

    Both candidate confusers and the sharing draw are taken whatever ``shared_confusion``
    is, so the plan consumes the same random numbers at any value: stores that differ only
    in ``shared_confusion`` share every other draw (classes, windows, paths, clutter,
    noise), and the calibration bench compares its candidates on paired data
    (``tests/data/test_synthetic.py::test_shared_confusion_changes_only_the_visual_confusers``).
    """
    drawn = {m: (_other_class(rng, video.cls), rng.random()) for m in MODALITIES}
    shared = rng.random() < mixing["shared_confusion"]
    for modality in MODALITIES:
        confuser, u = drawn[MODALITIES[0] if shared else modality]
        video.confusers[modality] = (confuser, u * mixing[f"{modality}_confusion"])
    video.path = _path(rng, map_size)
    video.clutter = [
        (_other_class(rng, video.cls), rng.integers(map_size, size=2)) for _ in range(clutter)
    ]


@dataclass
class SyntheticPlan:
    """Everything :func:`generate_synthetic` draws before rendering features.

    Attributes:
        orders: split name -> ``(k,)`` store rows of that split.
        videos: the event videos, by store row.
        background: the background-only videos (``*_noisy.h5``), in file order.
    """

    orders: dict[str, np.ndarray]
    videos: list[SyntheticVideo]
    background: list[SyntheticVideo]


def _streams(seed: int) -> list[np.random.Generator]:
    """The world, plan and render generators spawned from ``seed``."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]


def plan_synthetic(
    rng: np.random.Generator,
    sizes: dict[str, int],
    n_background: int,
    map_size: int,
    full_fraction: float,
    clutter: int,
    mixing: dict[str, float],
) -> SyntheticPlan:
    """Draw splits, classes, windows, regions, confusers and object positions.

    Args:
        rng: the plan generator.
        sizes: videos per split (``train``, ``val``, ``test``).
        n_background: background-only videos.
        map_size: side of the visual map.
        full_fraction: share of videos whose event spans all 10 segments.
        clutter: silent visual objects per video.
        mixing: ``audio_confusion``, ``visual_confusion`` and ``shared_confusion``.
    """
    order = rng.permutation(sum(sizes.values()))
    videos: list[SyntheticVideo | None] = [None] * order.size
    orders, start = {}, 0
    for split, size in sizes.items():
        rows = orders[split] = order[start : start + size]
        classes = _split_classes(rng, size)
        windows = _event_windows(rng, size, full_fraction)
        for row, window, cls in zip(rows, windows, classes, strict=True):
            videos[row] = _event_video(rng, tuple(window), int(cls))
        start += size
    background = [_background_video(rng) for _ in range(n_background)]
    for video in [*videos, *background]:
        _place_objects(rng, video, map_size, clutter, mixing)
    return SyntheticPlan(orders, videos, background)


def _instance(
    rng: np.random.Generator, protos: np.ndarray, cls: int, confuser: tuple[int, float]
) -> np.ndarray:
    """A video's own version of class ``cls``: mixed with its confuser, jittered per dim."""
    other, weight = confuser
    proto = (1 - weight) * protos[cls] + weight * protos[other]
    return proto * rng.lognormal(0.0, _INSTANCE_JITTER, size=proto.shape)


def _class_instances(
    rng: np.random.Generator, protos: np.ndarray, video: SyntheticVideo, modality: str
) -> dict[int, np.ndarray]:
    """Instances of every class a video holds in ``modality``: ``c`` mixed, others plain."""
    present = video.audible if modality == "audio" else video.visible
    classes = {video.cls} | {int(c) for c in present if c >= 0}
    if modality == "visual":
        classes |= {cls for cls, _ in video.clutter}
    return {
        c: _instance(rng, protos, c, video.confusers[modality] if c == video.cls else (c, 0.0))
        for c in sorted(classes)
    }


def _render_audio(
    rng: np.random.Generator, world: _World, video: SyntheticVideo, render: dict
) -> np.ndarray:
    dim, strength = world.audio.shape[1], render["audio_strength"]
    audio = rng.normal(-0.25, render["audio_noise"], size=(store.T, dim))  # (T, A) ambience
    instances = _class_instances(rng, world.audio, video, "audio")
    for t, cls in enumerate(video.audible):
        if cls >= 0:
            audio[t] += strength * rng.uniform(0.6, 1.2) * instances[cls]
    border = world.audio_borders * strength * render["border_strength"]  # (2, A)
    audio[video.onset] += border[0]
    audio[video.offset] += border[1]
    return np.maximum(audio, 0.0)


def _render_visual(
    rng: np.random.Generator, world: _World, video: SyntheticVideo, render: dict
) -> np.ndarray:
    dim, size, strength = world.visual.shape[1], render["map_size"], render["visual_strength"]
    scene = world.scenes[rng.integers(_N_SCENES)] * _SCENE_STRENGTH  # (C,)
    shape = (store.T, size, size, dim)
    visual = rng.normal(_TEXTURE_MEAN, render["visual_noise"], size=shape) + scene  # (T, H, W, C)
    instances = _class_instances(rng, world.visual, video, "visual")
    for cls, cell in video.clutter:
        still = footprint(cell, size)[:, :, None] * instances[cls]  # (H, W, C)
        visual += render["clutter_strength"] * still
    sigma = render["source_sigma"]
    prints = np.stack([footprint(cell, size, sigma) for cell in video.path])  # (T, H, W)
    prints = prints[..., None]  # (T, H, W, 1)
    for t, cls in enumerate(video.visible):
        if cls >= 0:
            visual[t] += strength * prints[t] * instances[cls]
    border = world.visual_borders * strength * render["border_strength"]  # (2, C)
    visual[video.onset] += prints[video.onset] * border[0]  # at the source
    visual[video.offset] += prints[video.offset] * border[1]
    return (_VISUAL_GAIN * np.maximum(visual, 0.0)).astype(np.float32)


def _write_features(
    path_audio: Path,
    path_visual: Path,
    videos: list[SyntheticVideo],
    rng: np.random.Generator,
    world: _World,
    render: dict,
) -> None:
    """Render videos one at a time straight into chunked HDF5 files (bounded memory)."""
    n, dim_a, dim_v = len(videos), world.audio.shape[1], world.visual.shape[1]
    size = render["map_size"]
    with (
        atomic_path(path_audio) as tmp_a,
        atomic_path(path_visual) as tmp_v,
        h5py.File(tmp_a, "w") as h5a,
        h5py.File(tmp_v, "w") as h5v,
    ):
        audio = h5a.create_dataset(
            store.FEATURE_KEY, (n, store.T, dim_a), "float32", chunks=(1, store.T, dim_a)
        )
        visual = h5v.create_dataset(
            store.FEATURE_KEY,
            (n, store.T, size, size, dim_v),
            "float32",
            chunks=(1, store.T, size, size, dim_v),
        )
        for i, video in enumerate(videos):
            audio[i] = _render_audio(rng, world, video, render)
            visual[i] = _render_visual(rng, world, video, render)


def generate_synthetic(
    out_dir: str | os.PathLike,
    n_train: int = 560,
    n_val: int = 80,
    n_test: int = 402,
    n_background: int = 30,
    seed: int = 0,
    audio_dim: int = store.OFFICIAL_AUDIO_DIM,
    visual_dim: int = store.OFFICIAL_MAP[2],
    map_size: int = store.OFFICIAL_MAP[0],
    full_fraction: float = 0.664,
    audio_strength: float = 2.75,
    visual_strength: float = 3.4,
    audio_noise: float = 0.35,
    visual_noise: float = 0.35,
    audio_confusion: float = 0.65,
    visual_confusion: float = 0.68,
    shared_confusion: float = 0.0,
    clutter: int = 2,
    clutter_strength: float = 1.5,
    border_strength: float = 0.6,
    source_sigma: float = 1.8,
) -> SyntheticPlan:
    """Write a synthetic AVE store (official layout, float32 features) into ``out_dir``.

    Args:
        out_dir: destination directory (created).
        n_train: training videos (default: 560).
        n_val: validation videos (default: 80).
        n_test: test videos (default: 402, as in AVE).
        n_background: background-only videos of the weak setting (default: 30: with
            560 training videos, 5.1 % of the weak setting's training set, as AVE's 178 of
            3517).
        seed: seed of the random generators (default: 0).
        audio_dim: audio feature size (default: 128, as VGGish).
        visual_dim: visual channels (default: 512, as VGG-19 pool5).
        map_size: side of the visual map (default: 7).
        full_fraction: share of videos whose event spans all 10 segments (default: 0.664,
            AVE's 2750 of 4142).
        audio_strength: amplitude of an audible source over the ambience (default: 2.75).
        visual_strength: peak amplitude of a visible source over the texture (default: 3.4).
        audio_noise: standard deviation of the audio ambience (default: 0.35).
        visual_noise: standard deviation of the visual texture (default: 0.35).
        audio_confusion: largest weight of the confuser class in a video's sound of its
            class, in [0, 1]; weights are uniform below it (default: 0.65).
        visual_confusion: the same for the video's look of its class (default: 0.68).
        shared_confusion: probability that both modalities share the confuser and its
            weight (default: 0.0: each modality draws its own).
        clutter: silent objects of other classes standing in each visual map (default: 2).
        clutter_strength: peak amplitude of a clutter object (default: 1.5).
        border_strength: amplitude of the onset/offset signatures relative to the source
            (default: 0.6).
        source_sigma: width (standard deviation, in cells) of the sound source's Gaussian
            footprint; about ``2 pi sigma^2`` cells of the map hold it, so a wider source
            is diluted less by the map's average (default: 1.8, about 20 cells; the
            clutter objects have 0.8, about 4 cells).

    Returns:
        The plan of the store (:func:`plan_synthetic`): what each video holds.
    """
    out_dir = Path(out_dir)
    world_rng, plan_rng, render_rng = _streams(seed)
    world = _World(world_rng, audio_dim, visual_dim)
    mixing = {
        "audio_confusion": audio_confusion,
        "visual_confusion": visual_confusion,
        "shared_confusion": shared_confusion,
    }
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    plan = plan_synthetic(plan_rng, sizes, n_background, map_size, full_fraction, clutter, mixing)
    for split, rows in plan.orders.items():
        store.write_array(out_dir / store.order_file(split), store.ORDER_KEY, rows)
    render = {
        "map_size": map_size,
        "audio_strength": audio_strength,
        "visual_strength": visual_strength,
        "audio_noise": audio_noise,
        "visual_noise": visual_noise,
        "clutter_strength": clutter_strength,
        "border_strength": border_strength,
        "source_sigma": source_sigma,
    }
    audio, visual = out_dir / store.AUDIO, out_dir / store.VISUAL
    _write_features(audio, visual, plan.videos, render_rng, world, render)
    store.write_array(out_dir / store.LABELS, store.FEATURE_KEY, one_hot(_labels(plan.videos)))
    if n_background:
        noisy_audio, noisy_visual = out_dir / store.AUDIO_NOISY, out_dir / store.VISUAL_NOISY
        _write_features(noisy_audio, noisy_visual, plan.background, render_rng, world, render)
        labels = one_hot(np.full(n_background, store.BACKGROUND))  # (m, 29)
        store.write_array(out_dir / store.LABELS_NOISY, store.FEATURE_KEY, labels)
    return plan


def _labels(videos: list[SyntheticVideo]) -> np.ndarray:
    return np.stack([video.labels() for video in videos])  # (n, T)
