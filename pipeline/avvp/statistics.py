"""Annotation statistics of an LLP store, the ones the synthetic generator reproduces.

:func:`measure` reads a store's (or the release's) annotation files and counts:

* ``classes_per_video``: videos of the train split by number of weak labels;
* ``class_counts``: weak labels of the train split per class (the class prior);
* ``modality``: (video, class) weak labels of the val and test splits by where their dense
  events are: ``audio_only``, ``visual_only`` or ``audio_visual`` (in both; a label with
  no dense event is left out);
* ``runs``: per modality, (video, class) pairs by number of separate events (contiguous
  runs of segments after rasterising the rows, so that adjacent rows count as one);
* ``lengths``: per modality, events by length in segments (1..10);
* ``lengths_by_runs``: the same, separately for labels with 1, 2, ... 5 events (the
  generator draws from these: the events of a label with several events are short);
* ``cooccurrence``: of the ``audio_visual`` labels, how many have a segment that is both
  an audio and a visual event of the class;
* ``annotation_gaps``: where the weak and dense labels of the val and test splits disagree
  (the two were annotated separately): ``weak_labels``, how many of them,
  ``weak_without_dense``, how many have no dense event in either modality, and
  ``dense_without_weak``, the (video, class) pairs with a dense event but no weak label,
  by where their events are (``audio_only``, ``visual_only``, ``audio_visual``).

The numbers measured on the real release are committed in ``llp_statistics.json`` beside
this file (``python -m pipeline.avvp.statistics --write REFERENCE_DIR`` rewrites it; a
test checks it against ``../shared/llp-reference`` when that folder is present) and are
the generator's default distributions (:mod:`pipeline.avvp.synthetic`).
"""

import argparse
import os
from pathlib import Path

import numpy as np

from pipeline.avvp import store as llp
from pipeline.io import read_json, write_json

STATISTICS_FILE = Path(__file__).with_name("llp_statistics.json")
KINDS = ("audio_only", "visual_only", "audio_visual")


def runs(row: np.ndarray) -> list[int]:
    """Lengths of the contiguous runs of ones of a 0/1 vector, in order."""
    padded = np.concatenate([[0], np.asarray(row, dtype=np.int64), [0]])
    edges = np.flatnonzero(np.diff(padded))  # starts at even, ends at odd positions
    return (edges[1::2] - edges[::2]).tolist()


def _count(values: list[int], low: int, high: int) -> list[int]:
    """Histogram of integer ``values`` over ``low..high`` (index 0 is ``low``)."""
    return np.bincount(np.asarray(values, dtype=np.int64) - low, minlength=high - low + 1)[
        : high - low + 1
    ].tolist()


def _annotation_gaps(weak: np.ndarray, present: np.ndarray) -> dict:
    """``annotation_gaps`` of the module docstring.

    Args:
        weak: ``(n, 25)`` bool weak labels.
        present: ``(n, 2, 25)`` bool, whether a class has an audio / visual event.
    """
    audio, visual = present[:, 0] & ~weak, present[:, 1] & ~weak  # (n, 25) each: untagged
    return {
        "weak_labels": int(weak.sum()),
        "weak_without_dense": int((weak & ~present.any(axis=1)).sum()),
        "dense_without_weak": {
            "audio_only": int((audio & ~visual).sum()),
            "visual_only": int((visual & ~audio).sum()),
            "audio_visual": int((audio & visual).sum()),
        },
    }


def measure_labels(train_weak: np.ndarray, weak: np.ndarray, dense: np.ndarray) -> dict:
    """The statistics of the module docstring from label arrays.

    Args:
        train_weak: ``(n_train, 25)`` weak labels of the train split.
        weak: ``(n, 25)`` weak labels of the evaluated (val and test) videos.
        dense: ``(n, 2, 25, T)`` their audio and visual events.
    """
    present = dense.any(axis=-1)  # (n, 2, 25)
    kinds = {kind: 0 for kind in KINDS}
    together = 0
    for i, c in zip(*np.nonzero(weak), strict=True):
        audio, visual = present[i, :, c]
        if audio and visual:
            kinds["audio_visual"] += 1
            together += int((dense[i, 0, c] * dense[i, 1, c]).any())
        elif audio or visual:
            kinds["audio_only" if audio else "visual_only"] += 1
    run_counts, lengths, by_runs = {}, {}, {}
    for m, modality in enumerate(llp.MODALITIES):
        per_pair = [runs(dense[i, m, c]) for i, c in zip(*np.nonzero(present[:, m]), strict=True)]
        run_counts[modality] = _count([len(r) for r in per_pair], 1, llp.T // 2)
        lengths[modality] = _count([n for r in per_pair for n in r], 1, llp.T)
        by_runs[modality] = [
            _count([n for r in per_pair if len(r) == k for n in r], 1, llp.T)
            for k in range(1, llp.T // 2 + 1)
        ]
    return {
        "annotation_gaps": _annotation_gaps(weak > 0, present),
        "classes_per_video": _count(train_weak.sum(axis=1).astype(int).tolist(), 1, 3),
        "class_counts": train_weak.sum(axis=0).astype(int).tolist(),
        "modality": kinds,
        "runs": run_counts,
        "lengths": lengths,
        "lengths_by_runs": by_runs,
        "cooccurrence": {"audio_visual": kinds["audio_visual"], "cooccurring": together},
    }


def measure(store: str | os.PathLike) -> dict:
    """The statistics of the annotation files in ``store`` (features are not read)."""
    splits = {split: llp.load_split(store, split) for split in llp.SPLITS}
    evaluated = [splits["val"], splits["test"]]
    return measure_labels(
        splits["train"].weak,
        np.concatenate([s.weak for s in evaluated]),
        np.concatenate([s.dense for s in evaluated]),
    )


def reference_statistics() -> dict:
    """The statistics of the real release, as committed in :data:`STATISTICS_FILE`."""
    return read_json(STATISTICS_FILE)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="a directory with the release's CSVs")
    parser.add_argument("--write", action="store_true", help=f"rewrite {STATISTICS_FILE.name}")
    args = parser.parse_args(argv)
    stats = measure(args.reference)
    if args.write:
        write_json(STATISTICS_FILE, stats)
    print(stats)


if __name__ == "__main__":
    main()
