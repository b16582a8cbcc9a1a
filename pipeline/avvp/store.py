"""The LLP store: the layout of the AVVP-ECCV20 release, its validation and its reader.

A store directory holds the release's annotation files and one ``.npy`` feature file per
video and feature kind, named by the video's YouTube id (the first 11 characters of its
``filename``, as the release names them)::

    AVVP_train.csv  AVVP_val_pd.csv  AVVP_test_pd.csv      filename, event_labels (weak)
    AVVP_eval_audio.csv  AVVP_eval_visual.csv              filename, onset, offset, event_labels
    vggish/<id>.npy       (10, 128)   audio, one row per 1 s segment
    res152/<id>.npy       (80, 2048)  2D visual, 8 frames per segment
    r2plus1d_18/<id>.npy  (10, 512)   3D visual, one row per segment

All files are tab-separated with a header row; ``event_labels`` of a weak file is a
comma-separated list of the 25 class names of :data:`CLASSES`. Every source (synthetic,
local, llp) produces this layout and :func:`validate_llp_store` checks it the same way,
failing with one message that names the file (and line), what was expected and what was
found.

The release's dense files hold six rows whose onset is not before their offset
(:data:`KNOWN_EMPTY_EVENTS`): the reference evaluation turns them into empty events
(``GT[c, onset:offset] = 1`` sets nothing). They are accepted and counted, exactly these
six; any other such row is an error. The dense files also hold events of a few videos of
no split (8 in the release); like the reference evaluation, the reader ignores them.
"""

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError

T = 10
#: The 25 LLP event classes, in the class-index order of the reference code.
CLASSES = (
    "Speech",
    "Car",
    "Cheering",
    "Dog",
    "Cat",
    "Frying_(food)",
    "Basketball_bounce",
    "Fire_alarm",
    "Chainsaw",
    "Cello",
    "Banjo",
    "Singing",
    "Chicken_rooster",
    "Violin_fiddle",
    "Vacuum_cleaner",
    "Baby_laughter",
    "Accordion",
    "Lawn_mower",
    "Motorcycle",
    "Helicopter",
    "Acoustic_guitar",
    "Telephone_bell_ringing",
    "Baby_cry_infant_cry",
    "Blender",
    "Clapping",
)
N_CLASSES = len(CLASSES)
CLASS_INDEX = {name: i for i, name in enumerate(CLASSES)}
SPLITS = ("train", "val", "test")
WEAK_FILES = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv", "test": "AVVP_test_pd.csv"}
MODALITIES = ("audio", "visual")
DENSE_FILES = {"audio": "AVVP_eval_audio.csv", "visual": "AVVP_eval_visual.csv"}
FULL_FILE = "AVVP_dataset_full.csv"  # the release's union of the splits (optional)
WEAK_HEADER = ("filename", "event_labels")
DENSE_HEADER = ("filename", "onset", "offset", "event_labels")
#: Feature directory -> shape of one video's array in the release.
FEATURES = {"vggish": (T, 128), "res152": (8 * T, 2048), "r2plus1d_18": (T, 512)}
ID_LENGTH = 11  # a YouTube id; the release names feature files by it

#: The release's dense rows with onset >= offset: (file, filename, onset, offset, label).
KNOWN_EMPTY_EVENTS = frozenset(
    {
        ("AVVP_eval_audio.csv", "CaC2xvdLC34_250_260", 9, 9, "Speech"),
        ("AVVP_eval_audio.csv", "CSWQ_HzQ_10_20", 9, 9, "Basketball_bounce"),
        ("AVVP_eval_audio.csv", "Gg3pK71kApY_30_40", 10, 10, "Speech"),
        ("AVVP_eval_audio.csv", "H5WcJwyjxIg_2_12", 0, 0, "Baby_cry_infant_cry"),
        ("AVVP_eval_audio.csv", "Baue01N86wE_10_20", 1, 1, "Dog"),
        ("AVVP_eval_audio.csv", "8DF2PxdT5tE_390_400", 9, 0, "Cheering"),
    }
)

# remember(path, fact, compute) -> value (pipeline.data.ledger.FileLedger.fact).
Remember = Callable[[Path, str, Callable[[], str]], str]


def _compute(path: Path, fact: str, compute: Callable[[], str]) -> str:
    return compute()


def video_id(filename: str) -> str:
    """The YouTube id that names a video's feature files (``filename[:11]``)."""
    return filename[:ID_LENGTH]


@dataclass(frozen=True)
class Event:
    """One dense annotation row: ``label`` occurs in segments ``[onset, offset)``."""

    filename: str
    onset: int
    offset: int
    label: int


@dataclass(frozen=True)
class LLPInfo:
    """What :func:`validate_llp_store` learned about a valid store.

    Args:
        splits: videos per split.
        dims: feature directory -> per-video shape found.
        dense_events: valid dense rows per modality.
        empty_events: the :data:`KNOWN_EMPTY_EVENTS` rows found (and ignored).
    """

    splits: dict[str, int]
    dims: dict[str, tuple[int, int]]
    dense_events: dict[str, int]
    empty_events: int


def _rows(path: Path, header: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of a tab-separated file after checking its header."""
    if not path.is_file():
        raise PipelineError(f"{path}: file not found (an LLP annotation file)")
    with path.open(newline="") as handle:
        lines = list(csv.reader(handle, delimiter="\t"))
    if not lines or tuple(lines[0]) != header:
        found = "an empty file" if not lines else f"header {lines[0]}"
        raise PipelineError(
            f"{path}: expected the tab-separated header {list(header)}, found {found}"
        )
    rows = []
    for number, fields in enumerate(lines[1:], start=2):
        if len(fields) != len(header):
            raise PipelineError(
                f"{path} line {number}: expected {len(header)} tab-separated fields, "
                f"found {len(fields)}: {fields}"
            )
        rows.append((number, fields))
    return rows


def _class(path: Path, number: int, name: str) -> int:
    if name not in CLASS_INDEX:
        raise PipelineError(
            f"{path} line {number}: expected one of the {N_CLASSES} LLP classes, "
            f"found unknown class name {name!r}"
        )
    return CLASS_INDEX[name]


def read_weak(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Read a weak-label file: the ``filename`` of each video and ``(n, 25)`` 0/1 labels.

    Raises:
        PipelineError: on a bad header, an unknown class, an empty label list or a
            repeated filename, naming the file and line.
    """
    path = Path(path)
    names, labels, seen = [], [], {}
    for number, (filename, text) in _rows(path, WEAK_HEADER):
        if filename in seen:
            raise PipelineError(
                f"{path} line {number}: expected each filename once, "
                f"found {filename!r} again (first on line {seen[filename]})"
            )
        seen[filename] = number
        row = np.zeros(N_CLASSES, dtype=np.float32)
        if not text.strip():
            raise PipelineError(
                f"{path} line {number}: expected at least one event label, found none"
            )
        for name in text.split(","):
            row[_class(path, number, name.strip())] = 1.0
        names.append(filename)
        labels.append(row)
    return names, np.stack(labels) if labels else np.zeros((0, N_CLASSES), np.float32)


def read_dense(path: str | os.PathLike) -> tuple[list[Event], int]:
    """Read a dense-event file: its valid events and the number of known empty rows.

    Onsets and offsets are whole seconds in ``[0, 10]``; ``onset < offset`` except for the
    rows of :data:`KNOWN_EMPTY_EVENTS`, which are counted and dropped.

    Raises:
        PipelineError: on a bad header, a non-integer or out-of-range time, onset >= offset
            or an unknown class, naming the file and line.
    """
    path = Path(path)
    events, empty = [], 0
    for number, (filename, onset, offset, name) in _rows(path, DENSE_HEADER):
        times = []
        for key, text in (("onset", onset), ("offset", offset)):
            if not text.strip().isdigit() or int(text) > T:
                raise PipelineError(
                    f"{path} line {number}: expected {key} a whole number of seconds in "
                    f"[0, {T}], found {text!r}"
                )
            times.append(int(text))
        label = _class(path, number, name)
        if times[0] >= times[1]:
            if (path.name, filename, *times, name) in KNOWN_EMPTY_EVENTS:
                empty += 1
                continue
            raise PipelineError(
                f"{path} line {number}: expected onset < offset, found onset {times[0]} "
                f">= offset {times[1]} ({filename}, {name})"
            )
        events.append(Event(filename, times[0], times[1], label))
    return events, empty


def dense_labels(events: list[Event], names: list[str]) -> np.ndarray:
    """``(n, 25, T)`` 0/1 matrix of the events of the videos ``names`` (others ignored)."""
    row = {name: i for i, name in enumerate(names)}
    out = np.zeros((len(names), N_CLASSES, T), dtype=np.float32)
    for event in events:
        if event.filename in row:
            out[row[event.filename], event.label, event.onset : event.offset] = 1.0
    return out


def _check_splits(store: Path) -> dict[str, list[str]]:
    splits = {split: read_weak(store / WEAK_FILES[split])[0] for split in SPLITS}
    owner: dict[str, str] = {}
    for split, names in splits.items():
        for name in names:
            vid = video_id(name)
            if vid in owner:
                raise PipelineError(
                    f"{store / WEAK_FILES[split]}: expected each video (YouTube id {vid}) in "
                    f"one split only, found it also in {WEAK_FILES[owner[vid]]}"
                )
            owner[vid] = split
    return splits


def _check_dense(store: Path) -> tuple[dict[str, int], int]:
    counts, empty = {}, 0
    for modality, name in DENSE_FILES.items():
        events, skipped = read_dense(store / name)
        counts[modality], empty = len(events), empty + skipped
    return counts, empty


def _check_feature(path: Path, expected: tuple | None, remember: Remember) -> tuple[int, ...]:
    if not path.is_file():
        raise PipelineError(f"{path}: feature file not found")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise PipelineError(
            f"{path}: expected a .npy array, found an unreadable file ({err})"
        ) from None
    if array.ndim != 2 or (expected is not None and array.shape != expected):
        want = "a 2-D array" if expected is None else f"shape {expected}"
        raise PipelineError(f"{path}: expected {want}, found shape {array.shape}")
    if array.dtype.kind not in "fiu":
        raise PipelineError(f"{path}: expected a numeric dtype, found {array.dtype}")

    def finite() -> str:
        if not np.isfinite(np.asarray(array, dtype=np.float64)).all():
            raise PipelineError(f"{path}: expected finite values, found NaN or inf")
        return "yes"

    remember(path, "finite", finite)
    return tuple(array.shape)


def _check_features(
    store: Path, names: list[str], official: bool, remember: Remember
) -> dict[str, tuple[int, int]]:
    """Every feature file of every video; all of one kind must share a shape."""
    dims = {}
    for kind, shape in FEATURES.items():
        expected = shape if official else None
        for name in names:
            found = _check_feature(store / kind / f"{video_id(name)}.npy", expected, remember)
            expected = found
        dims[kind] = expected
    return dims


def validate_llp_store(
    store: str | os.PathLike, official: bool = False, remember: Remember | None = None
) -> LLPInfo:
    """Check an LLP store directory against the layout of the module docstring.

    Checks the annotation files (headers, class names, times, onset < offset, disjoint
    splits) and, for every video of every split,
    that its three feature files exist, are numeric 2-D arrays of one shape per kind
    (the release's with ``official``) and hold finite values.

    Args:
        store: the store directory.
        official: require the release's shapes of :data:`FEATURES` (sources ``local`` and
            ``llp``); else any one shape per kind (synthetic). (default: :obj:`False`)
        remember: ``remember(path, fact, compute)``, e.g. a
            :class:`~pipeline.data.ledger.FileLedger`'s ``fact``, so that a file version is
            read for finite values once; :obj:`None` reads every file. (default: :obj:`None`)

    Raises:
        PipelineError: naming the file (and line), what was expected and what was found.
    """
    store = Path(store)
    if not store.is_dir():
        raise PipelineError(f"{store}: LLP store directory not found")
    remember = _compute if remember is None else remember
    splits = _check_splits(store)
    counts, empty = _check_dense(store)
    names = [name for split in SPLITS for name in splits[split]]
    dims = _check_features(store, names, official, remember)
    return LLPInfo(
        splits={split: len(names) for split, names in splits.items()},
        dims=dims,
        dense_events=counts,
        empty_events=empty,
    )


@dataclass
class LLPSplit:
    """The videos of one split: names, weak labels and (val/test) dense labels.

    Args:
        store: the store directory.
        names: ``filename`` of each video.
        weak: ``(n, 25)`` video-level labels.
        dense: ``(n, 2, 25, T)`` audio and visual event labels, or :obj:`None` (train).
    """

    store: Path
    names: list[str]
    weak: np.ndarray
    dense: np.ndarray | None

    def features(self, index: np.ndarray | list[int]) -> dict[str, np.ndarray]:
        """The float32 features of the videos ``index``: ``{kind: (len(index), *shape)}``."""
        return {
            kind: np.stack(
                [
                    np.load(
                        self.store / kind / f"{video_id(self.names[i])}.npy", allow_pickle=False
                    )
                    for i in index
                ]
            ).astype(np.float32)
            for kind in FEATURES
        }


def load_split(store: str | os.PathLike, split: str) -> LLPSplit:
    """Read the labels of ``split`` of a (validated) store; features are read on demand."""
    store = Path(store)
    names, weak = read_weak(store / WEAK_FILES[split])
    dense = None
    if split != "train":
        dense = np.stack(
            [dense_labels(read_dense(store / DENSE_FILES[m])[0], names) for m in MODALITIES],
            axis=1,
        )  # (n, 2, 25, T)
    return LLPSplit(store, names, weak, dense)
