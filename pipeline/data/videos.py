"""The ``videos`` source: raw videos of the AVE release → features → the official store layout.

``data.videos_dir`` holds what the raw-video release ships::

    AVE/<YouTubeID>.mp4          one video per line of Annotations.txt
    Annotations.txt              Category&YouTubeID&Quality&Start&End, one line per store row
    trainSet.txt valSet.txt testSet.txt   the split, as lines of Annotations.txt
                                 (or train_order.h5 val_order.h5 test_order.h5: row indices)

Every video goes through the recipe ``data.features`` (:mod:`pipeline.features.extract`)
into one feature file per video, cached in
``<data.download_dir>/features/<recipe>-<fingerprint>/<YouTubeID>.npz`` (the fingerprint
covers the recipe and the weights' contents). A stopped run resumes where it stopped: a
cached video is not decoded again. A missing or unreadable video, or one shorter than 10 s,
is reported by name; with ``data.on_bad_video: fail`` it stops the stage, with ``skip`` it
is left out of the store, listed in ``skipped_videos.txt`` there and counted in
``metrics/download.json``. The store's rows are the kept lines of ``Annotations.txt``, in
file order; the store keeps those lines as its own ``Annotations.txt`` (the class names of
plots and reports) and derives ``labels.h5`` from them. With ``seed003`` features the store
also holds ``onset_envelope.h5`` and ``onsets.h5``, ``(n, 10, 100)``.
"""

import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm import tqdm

from pipeline.data import store
from pipeline.data.annotations import annotation_lines, one_hot, parse_annotations
from pipeline.device import resolve_device
from pipeline.errors import PipelineError
from pipeline.features.decode import VideoError
from pipeline.features.extract import RECIPES, Recipe, build_extractor, fingerprint
from pipeline.features.weights import weights_file, weights_spec
from pipeline.npz import load_npz, save_npz

VIDEO_DIR = "AVE"
SPLIT_FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}
SKIPPED = "skipped_videos.txt"
EXTRA_FILES = {"onset_envelope": "onset_envelope.h5", "onsets": "onsets.h5"}
_HEADER = "Category&VideoID&Quality&StartTime&EndTime"
_ONSET_FRAMES = 100


@dataclass(frozen=True)
class Entry:
    """One line of ``Annotations.txt``: a store row and its video.

    Args:
        row: index among the file's lines (the store row if nothing is skipped).
        video_id: the YouTube id, the video's file name without ``.mp4``.
        line: the line as written.
    """

    row: int
    video_id: str
    line: str


def read_entries(videos_dir: Path) -> list[Entry]:
    """The lines of ``<videos_dir>/Annotations.txt`` as entries (checked by the parser)."""
    path = videos_dir / store.ANNOTATIONS
    parse_annotations(path)  # the format check, with line numbers in its messages
    entries = []
    for row, (number, line) in enumerate(annotation_lines(path)):
        video_id = line.split("&")[1].strip()
        if not video_id or Path(video_id).name != video_id or video_id in {".", ".."}:
            raise PipelineError(
                f"{path}: line {number}: expected a video id usable as a file name, "
                f"found {video_id!r}"
            )
        entries.append(Entry(row, video_id, line))
    return entries


def _rows_of_split_file(path: Path, rows_by_line: dict[str, list[int]]) -> np.ndarray:
    rows = []
    for number, line in annotation_lines(path):
        free = rows_by_line.get(line)
        if not free:
            raise PipelineError(
                f"{path}: line {number}: expected a line of {store.ANNOTATIONS} not used by "
                f"an earlier split line, found {line!r}"
            )
        rows.append(free.pop(0))
    return np.array(rows, dtype=np.int64)


def read_splits(videos_dir: Path, entries: list[Entry]) -> dict[str, np.ndarray]:
    """Row indices of each split, from the release's split files or from order files.

    ``trainSet.txt`` / ``valSet.txt`` / ``testSet.txt`` are used when all three are present
    (each line matched to an unused identical line of ``Annotations.txt``), else
    ``train_order.h5`` / ``val_order.h5`` / ``test_order.h5``.
    """
    texts = [videos_dir / name for name in SPLIT_FILES.values()]
    orders = [videos_dir / store.order_file(split) for split in store.SPLITS]
    if all(path.is_file() for path in texts):
        rows_by_line: dict[str, list[int]] = {}
        for entry in entries:
            rows_by_line.setdefault(entry.line, []).append(entry.row)
        return {
            s: _rows_of_split_file(videos_dir / f, rows_by_line) for s, f in SPLIT_FILES.items()
        }
    if all(path.is_file() for path in orders):
        splits = {}
        for split, path in zip(store.SPLITS, orders, strict=True):
            rows = store.read_array(path, store.ORDER_KEY).astype(np.int64)
            if rows.ndim != 1 or (rows.size and not 0 <= rows.min() <= rows.max() < len(entries)):
                raise PipelineError(
                    f"{path}: expected row indices in [0, {len(entries)}) "
                    f"(the lines of {store.ANNOTATIONS}), found shape {rows.shape}, "
                    f"range [{rows.min()}, {rows.max()}]"
                )
            splits[split] = rows
        return splits
    raise PipelineError(
        f"{videos_dir}: expected the split files {list(SPLIT_FILES.values())} or "
        f"{[p.name for p in orders]}, found neither set complete"
    )


def recipe_of(data: dict[str, Any]) -> Recipe:
    """The recipe named by ``data.features``."""
    return RECIPES[data["features"]]


def store_dims(data: dict[str, Any]) -> tuple[int, tuple[int, int, int]]:
    """``(audio_dim, map_shape)`` a store of ``data.features`` must have."""
    recipe = recipe_of(data)
    return recipe.audio_dim, recipe.map_shape


def weights_files(data: dict[str, Any], recipe: Recipe) -> dict[str, Path]:
    """The checked weights file of each network of ``recipe`` (``data.weights``)."""
    return {
        name: weights_file(name, weights_spec(data["weights"], name), data["download_dir"])
        for name in recipe.networks
    }


def _feature_spec(recipe: Recipe) -> dict[str, tuple[int, str]]:
    spec = {"audio": (2, "f"), "visual": (4, "f")}
    if "onsets" in recipe.extra:
        spec |= {"onset_envelope": (2, "f"), "onsets": (2, "b")}
    return spec


def load_video_features(path: Path, recipe: Recipe) -> dict[str, np.ndarray]:
    """A cached feature file, checked against the shapes of ``recipe`` for 10 segments."""
    features = load_npz(path, _feature_spec(recipe))
    shapes = {"audio": (store.T, recipe.audio_dim), "visual": (store.T, *recipe.map_shape)}
    shapes |= {name: (store.T, _ONSET_FRAMES) for name in recipe.extra}
    for key, shape in shapes.items():
        if features[key].shape != shape:
            raise PipelineError(
                f"{path} [key '{key}']: expected shape {shape}, found {features[key].shape}; "
                "delete the file to extract the video again"
            )
    return features


def _quiet() -> bool:
    return bool(os.environ.get("CI")) or not sys.stderr.isatty()


def extract_videos(
    entries: list[Entry], videos_dir: Path, cache: Path, extractor, on_bad_video: str
) -> tuple[list[Entry], list[tuple[str, str]]]:
    """Extract every video not yet in ``cache``; return the kept entries and the skipped ones.

    Args:
        entries: the lines of ``Annotations.txt``.
        videos_dir: ``data.videos_dir``.
        cache: the directory of per-video feature files.
        extractor: a zero-argument function returning the
            :class:`~pipeline.features.extract.Extractor` (called once, when first needed).
        on_bad_video: ``fail`` or ``skip``.

    Returns:
        ``(kept, skipped)``: the entries whose features are in the cache, and the
        ``(video id, problem)`` of the videos left out.

    Raises:
        PipelineError: a bad video with ``on_bad_video: fail``, naming it.
    """
    cache.mkdir(parents=True, exist_ok=True)
    kept, skipped, bad = [], [], set()
    for entry in tqdm(entries, desc="features", unit="video", disable=_quiet()):
        target = cache / f"{entry.video_id}.npz"
        if entry.video_id not in bad and not target.is_file():
            path = videos_dir / VIDEO_DIR / f"{entry.video_id}.mp4"
            try:
                features = extractor().video_features(path, limit=store.T)
                if len(features["audio"]) < store.T:
                    found = len(features["audio"])
                    raise VideoError(path, f"expected at least {store.T} s, found {found} s")
            except VideoError as err:
                if on_bad_video == "fail":
                    raise PipelineError(
                        f"{err} (data.on_bad_video is fail; set it to skip to leave bad videos out)"
                    ) from None
                tqdm.write(f"skipping video {entry.video_id}: {err}", file=sys.stderr)
                skipped.append((entry.video_id, str(err)))
                bad.add(entry.video_id)
                continue
            save_npz(target, features)
        if entry.video_id not in bad:
            kept.append(entry)
    return kept, skipped


def _write_features(dest: Path, kept: list[Entry], cache: Path, recipe: Recipe) -> None:
    """Stream the cached features of ``kept`` into the store's feature files, row by row."""
    names = {"audio": store.AUDIO, "visual": store.VISUAL}
    names |= {key: EXTRA_FILES[key] for key in recipe.extra}
    files = {key: h5py.File(dest / name, "w") for key, name in names.items()}
    try:
        datasets = {}
        for i, entry in enumerate(kept):
            features = load_video_features(cache / f"{entry.video_id}.npz", recipe)
            for key, h5 in files.items():
                values = features[key].astype(np.uint8 if key == "onsets" else np.float32)
                if key not in datasets:
                    shape = (len(kept), *values.shape)
                    datasets[key] = h5.create_dataset(
                        store.FEATURE_KEY,
                        shape=shape,
                        dtype=values.dtype,
                        chunks=(1, *values.shape),
                    )
                datasets[key][i] = values
    finally:
        for h5 in files.values():
            h5.close()


def write_video_store(
    dest: Path,
    kept: list[Entry],
    skipped: list[tuple[str, str]],
    splits: dict[str, np.ndarray],
    cache: Path,
    recipe: Recipe,
) -> list[str]:
    """Write the store layout of the kept videos into ``dest`` (a fresh directory).

    Args:
        dest: the (temporary) store directory.
        kept: the entries with cached features, in ``Annotations.txt`` order.
        skipped: ``(video id, problem)`` of the videos left out.
        splits: row indices of each split into all entries.
        cache: the per-video feature files.
        recipe: the recipe that made them.

    Returns:
        The class names in order of first appearance among the kept videos.
    """
    if not kept:
        raise PipelineError(f"{cache}: no video could be extracted ({len(skipped)} skipped)")
    _write_features(dest, kept, cache, recipe)
    (dest / store.ANNOTATIONS).write_text("\n".join([_HEADER, *(e.line for e in kept)]) + "\n")
    classes, labels = parse_annotations(dest / store.ANNOTATIONS)
    store.write_array(dest / store.LABELS, store.FEATURE_KEY, one_hot(labels))
    new_row = {entry.row: i for i, entry in enumerate(kept)}
    for split, rows in splits.items():
        order = np.array([new_row[r] for r in rows.tolist() if r in new_row], dtype=np.int64)
        store.write_array(dest / store.order_file(split), store.ORDER_KEY, order)
    (dest / SKIPPED).write_text("".join(f"{vid}\t{problem}\n" for vid, problem in skipped))
    return classes


def build_video_store(dest: Path, data: dict[str, Any]) -> None:
    """Fill ``dest`` with the store of ``data.videos_dir`` (the ``videos`` source).

    Args:
        dest: the (temporary) store directory.
        data: the ``data`` section (``videos_dir``, ``features``, ``on_bad_video``,
            ``weights``, ``device``, ``download_dir``).
    """
    recipe = recipe_of(data)
    on_bad_video = data["on_bad_video"]
    videos_dir = Path(data["videos_dir"]).expanduser()
    if not videos_dir.is_dir():
        raise PipelineError(f"data.videos_dir: directory not found: {videos_dir}")
    entries = read_entries(videos_dir)
    splits = read_splits(videos_dir, entries)
    files = weights_files(data, recipe)
    cache = Path(data["download_dir"]) / "features" / f"{recipe.name}-{fingerprint(recipe, files)}"
    device = resolve_device(data["device"])
    extractor = functools.cache(lambda: build_extractor(recipe, files, device))
    kept, skipped = extract_videos(entries, videos_dir, cache, extractor, on_bad_video)
    classes = write_video_store(dest, kept, skipped, splits, cache, recipe)
    full, _ = parse_annotations(videos_dir / store.ANNOTATIONS)
    if skipped:
        print(f"skipped {len(skipped)} of {len(entries)} videos (listed in {SKIPPED})")
    if classes != full[: len(classes)]:
        print(
            "note: the skipped videos change the order of first appearance of the classes, "
            "so class indices differ from the full release's (names stay right)",
            file=sys.stderr,
        )


def video_summary(root: str | os.PathLike) -> dict[str, int]:
    """``{"skipped_videos": count}`` for a store of the ``videos`` source, else ``{}``."""
    path = Path(root) / SKIPPED
    if not path.is_file():
        return {}
    return {"skipped_videos": len(path.read_text().splitlines())}
