"""A synthetic, AVE-shaped dataset that can only be solved by doing AVEL properly.

The generator writes the official store layout of DESIGN.md §3 from a seed. Its world:

* **Classes.** 28 event classes, each with a sparse non-negative audio prototype and a
  visual prototype. Confusable pairs (:data:`CONFUSABLE_PAIRS`, standing for helicopter /
  airplane, bus / truck, motorcycle / race car, male / female speech) share most of their
  active components in both modalities.
* **Videos.** Each video has one class ``c`` and one contiguous audio-visual event of at
  least 2 segments: with probability ``full_fraction`` it spans all 10 segments, otherwise
  its ``[start, end)`` is drawn uniformly among the contiguous windows of 2..9 segments.
  A segment is foreground (label ``c``) exactly when ``c`` is both audible and visible.
* **Background segments** of a partial video carry, per region before / after the event,
  one of: ``c`` audible only, ``c`` visible only, another class audible or visible, or
  nothing but ambience — so neither modality alone decides the label.
* **Borders.** The first segment of an event that starts after 0 carries an onset
  signature, and the last segment of an event that ends before 10 an offset signature, in
  both modalities.
* **Audio** is ``relu`` of a scaled instance prototype plus ambient noise: non-negative and
  sparse like VGGish outputs (about 2/3 zeros).
* **Visual** maps are ``relu`` texture noise plus a per-video scene, with the sound source
  drawn at a location of the ``map_size x map_size`` grid (a Gaussian footprint that drifts
  by at most one cell per segment).
* **Background-only videos** of the weak setting contain audible-only and visible-only
  events that never co-occur.

Everything is drawn from one ``numpy`` generator seeded by ``seed``: the same arguments
give byte-identical arrays.
"""

import os
from pathlib import Path

import h5py
import numpy as np

from pipeline.data import store
from pipeline.data.annotations import one_hot
from pipeline.io import atomic_path

N_EVENT_CLASSES = store.N_CLASSES - 1
CONFUSABLE_PAIRS = ((0, 1), (2, 3), (4, 5), (6, 7))
_SHARED_FRACTION = 0.75  # share of a confusable pair's prototype that is common to both
_AUDIO_ACTIVE = 0.12  # fraction of audio dims active in a class prototype
_VISUAL_ACTIVE = 0.10  # fraction of visual channels active in a class prototype
_N_SCENES = 12
_FOOTPRINT_SIGMA = 0.8
_REGION_KINDS = ("audible_only", "visible_only", "distractor", "ambient")
_REGION_PROBS = (0.3, 0.3, 0.15, 0.25)
_KEEP_REGION_KIND = 0.85  # a region's kind holds per segment with this probability


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

    The others are drawn uniformly among the contiguous partial windows of 2..9 segments
    (mean length 4.5), so that about 82% of segments are foreground, as in AVE's test split.
    """
    partial = [(s, e) for s in range(store.T) for e in range(s + 2, store.T + 1)]
    partial = np.array([w for w in partial if w != (0, store.T)])
    windows = partial[rng.integers(len(partial), size=n)]
    windows[rng.permutation(n)[: round(full_fraction * n)]] = (0, store.T)
    return windows


def _split_videos(rng: np.random.Generator, n: int, full_fraction: float) -> list["_Video"]:
    """``n`` event videos with balanced classes and the full-event share of the split."""
    classes = rng.permutation(np.arange(n) % N_EVENT_CLASSES)
    windows = _event_windows(rng, n, full_fraction)
    return [_event_video(rng, tuple(w), int(c)) for w, c in zip(windows, classes, strict=True)]


def _footprints(rng: np.random.Generator, map_size: int) -> np.ndarray:
    """``(T, H, W)`` Gaussian footprints of a source drifting at most one cell per segment."""
    pos = rng.integers(map_size, size=2).astype(np.float64)
    grid = np.arange(map_size, dtype=np.float64)
    prints = []
    for _ in range(store.T):
        pos = np.clip(pos + rng.integers(-1, 2, size=2) * (rng.random() < 0.3), 0, map_size - 1)
        dist2 = (grid[:, None] - pos[0]) ** 2 + (grid[None, :] - pos[1]) ** 2
        prints.append(np.exp(-dist2 / (2 * _FOOTPRINT_SIGMA**2)))
    return np.stack(prints)


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


class _Video:
    """Per-segment audible and visible classes of one video (``-1`` = nothing)."""

    def __init__(self, window: tuple[int, int] | None, cls: int | None) -> None:
        self.audible = np.full(store.T, -1)
        self.visible = np.full(store.T, -1)
        self.onset = np.zeros(store.T, dtype=bool)
        self.offset = np.zeros(store.T, dtype=bool)
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


def _fill_region(rng: np.random.Generator, video: _Video, segments: range, cls: int) -> None:
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


def _event_video(rng: np.random.Generator, window: tuple[int, int], cls: int) -> _Video:
    video = _Video(window, cls)
    _fill_region(rng, video, range(0, window[0]), cls)
    _fill_region(rng, video, range(window[1], store.T), cls)
    return video


def _background_video(rng: np.random.Generator) -> _Video:
    """Audible-only and visible-only events that never co-occur (weak-setting negatives)."""
    video = _Video(None, None)
    cls = int(rng.integers(N_EVENT_CLASSES))
    cut = int(rng.integers(1, store.T))
    if rng.random() < 0.5:  # the same class heard, then seen (or the reverse)
        video.audible[:cut], video.visible[cut:] = cls, cls
    else:  # one class heard while another is seen
        video.audible[:], video.visible[:] = cls, _other_class(rng, cls)
    keep = rng.random(store.T) < _KEEP_REGION_KIND
    video.audible[~keep] = -1
    return video


def _instance(rng: np.random.Generator, proto: np.ndarray, variation: float) -> np.ndarray:
    """A video's own version of a class prototype (multiplicative jitter on its support)."""
    return proto * rng.lognormal(0.0, variation, size=proto.shape)


def _render_audio(
    rng: np.random.Generator, world: _World, video: _Video, strength: float, noise: float
) -> np.ndarray:
    dim = world.audio.shape[1]
    audio = rng.normal(-0.25, noise, size=(store.T, dim))  # (T, A) ambience
    instances = {}
    for t, cls in enumerate(video.audible):
        if cls >= 0:
            proto = instances.setdefault(cls, _instance(rng, world.audio[cls], 0.35))
            audio[t] += strength * rng.uniform(0.6, 1.2) * proto
    border = world.audio_borders * strength * 0.6  # (2, A)
    audio[video.onset] += border[0]
    audio[video.offset] += border[1]
    return np.maximum(audio, 0.0)


def _render_visual(
    rng: np.random.Generator,
    world: _World,
    video: _Video,
    map_size: int,
    strength: float,
    noise: float,
) -> np.ndarray:
    dim = world.visual.shape[1]
    scene = world.scenes[rng.integers(_N_SCENES)] * 0.5  # (C,)
    visual = rng.normal(-0.2, noise, size=(store.T, map_size, map_size, dim))  # (T, H, W, C)
    visual += scene
    prints = {}
    for t, cls in enumerate(video.visible):
        if cls >= 0:
            if cls not in prints:
                prints[cls] = (_footprints(rng, map_size), _instance(rng, world.visual[cls], 0.35))
            footprint, proto = prints[cls]
            visual[t] += strength * footprint[t][:, :, None] * proto  # (H, W, C)
    border = world.visual_borders * strength * 0.6  # (2, C)
    visual[video.onset] += border[0]
    visual[video.offset] += border[1]
    return np.maximum(visual, 0.0).astype(np.float32)


def _write_features(
    path_audio: Path,
    path_visual: Path,
    videos: list[_Video],
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
            audio[i] = _render_audio(
                rng, world, video, render["audio_strength"], render["audio_noise"]
            )
            visual[i] = _render_visual(
                rng, world, video, size, render["visual_strength"], render["visual_noise"]
            )


def generate_synthetic(
    out_dir: str | os.PathLike,
    n_train: int = 560,
    n_val: int = 80,
    n_test: int = 80,
    n_background: int = 40,
    seed: int = 0,
    audio_dim: int = store.OFFICIAL_AUDIO_DIM,
    visual_dim: int = store.OFFICIAL_MAP[2],
    map_size: int = store.OFFICIAL_MAP[0],
    full_fraction: float = 0.67,
    audio_strength: float = 1.6,
    visual_strength: float = 1.6,
    audio_noise: float = 0.35,
    visual_noise: float = 0.35,
) -> None:
    """Write a synthetic AVE store (official layout, float32 features) into ``out_dir``.

    Args:
        out_dir: destination directory (created).
        n_train: training videos (default: 560).
        n_val: validation videos (default: 80).
        n_test: test videos (default: 80).
        n_background: background-only videos of the weak setting (default: 40).
        seed: seed of the one random generator (default: 0).
        audio_dim: audio feature size (default: 128, as VGGish).
        visual_dim: visual channels (default: 512, as VGG-19 pool5).
        map_size: side of the visual map (default: 7).
        full_fraction: share of videos whose event spans all 10 segments (default: 0.67).
        audio_strength: amplitude of an audible source over the ambience (default: 1.6).
        visual_strength: amplitude of a visible source over the texture (default: 1.6).
        audio_noise: standard deviation of the audio ambience (default: 0.35).
        visual_noise: standard deviation of the visual texture (default: 0.35).
    """
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    world = _World(rng, audio_dim, visual_dim)
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    order = rng.permutation(sum(sizes.values()))
    videos = [None] * order.size
    start = 0
    for split, size in sizes.items():
        rows = order[start : start + size]
        store.write_array(out_dir / store.order_file(split), store.ORDER_KEY, rows)
        for row, video in zip(rows, _split_videos(rng, size, full_fraction), strict=True):
            videos[row] = video
        start += size
    render = {
        "map_size": map_size,
        "audio_strength": audio_strength,
        "visual_strength": visual_strength,
        "audio_noise": audio_noise,
        "visual_noise": visual_noise,
    }
    _write_features(out_dir / store.AUDIO, out_dir / store.VISUAL, videos, rng, world, render)
    store.write_array(out_dir / store.LABELS, store.FEATURE_KEY, one_hot(_labels(videos)))
    if n_background:
        negatives = [_background_video(rng) for _ in range(n_background)]
        noisy_audio, noisy_visual = out_dir / store.AUDIO_NOISY, out_dir / store.VISUAL_NOISY
        _write_features(noisy_audio, noisy_visual, negatives, rng, world, render)
        labels = one_hot(np.full(n_background, store.BACKGROUND))  # (m, 29)
        store.write_array(out_dir / store.LABELS_NOISY, store.FEATURE_KEY, labels)


def _labels(videos: list[_Video]) -> np.ndarray:
    return np.stack([video.labels() for video in videos])  # (n, T)
