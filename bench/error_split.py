"""Where a run's segment errors lie: the wrong class, a missed event, or a false alarm.

Reads the test predictions an evaluation keeps (``reports/predictions/<task>.json``) from
the workspace or from git revisions (an experiment's commit: ``tables`` maps rows to them)
and splits the segments into:

- **right**: the predicted class is the true one (the accuracy);
- **wrong class**: an event segment predicted as another event class;
- **missed**: an event segment predicted background;
- **false alarm**: a background segment predicted as an event;

each as a share of all segments, and adds **video class right**: the share of the videos
with an event whose most frequent predicted event class is their own (most frequent) event
class (a video with no predicted event counts as wrong).

Usage, from the repository root::

    python -m bench.error_split [--task sel] [REV ...]   # no REV: the workspace's file
"""

import argparse
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.data import store

FIELDS = ("right", "wrong class", "missed", "false alarm", "video class right")


def main_event_class(labels: np.ndarray, background: int = store.BACKGROUND) -> np.ndarray:
    """Each video's most frequent event class (the lowest on a tie), -1 without an event.

    Args:
        labels: ``(n, T)`` class indices.
        background: index of the background class.

    Returns:
        ``(n,)`` class indices.
    """
    return np.array(
        [np.bincount(row[row != background]).argmax() if (row != background).any() else -1
         for row in labels]
    )  # fmt: skip


def split_errors(
    labels: np.ndarray, predictions: np.ndarray, background: int = store.BACKGROUND
) -> dict[str, float]:
    """The shares of :data:`FIELDS` for ``(n, T)`` true and predicted class indices."""
    event, predicted_event = labels != background, predictions != background  # (n, T) each
    n = labels.size
    own, guessed = main_event_class(labels, background), main_event_class(predictions, background)
    right_videos = (guessed == own)[own >= 0]  # a video with no predicted event: -1, wrong
    return {
        "right": float((labels == predictions).mean()),
        "wrong class": float((event & predicted_event & (labels != predictions)).sum() / n),
        "missed": float((event & ~predicted_event).sum() / n),
        "false alarm": float((~event & predicted_event).sum() / n),
        "video class right": float(right_videos.mean()) if right_videos.size else float("nan"),
    }


def read_predictions(task: str, revision: str | None) -> dict:
    """``reports/predictions/<task>.json`` of the workspace or of git ``revision``."""
    path = f"reports/predictions/{task}.json"
    if revision is None:
        if not Path(path).is_file():
            raise SystemExit(f"error_split: {path}: not found (run `dvc repro evaluate@{task}`)")
        return json.loads(Path(path).read_text())
    shown = subprocess.run(
        ["git", "show", f"{revision}:{path}"], capture_output=True, text=True, check=False
    )
    if shown.returncode:
        raise SystemExit(f"error_split: {revision}:{path}: {shown.stderr.strip()}")
    return json.loads(shown.stdout)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="sel", help="sel, wsel, wsel_refined (default sel)")
    parser.add_argument("revisions", nargs="*", help="git revisions (default: the workspace)")
    args = parser.parse_args(argv)
    print(f"{'run':<14}" + "".join(f"{field:>19}" for field in FIELDS) + "   (% )")
    for revision in args.revisions or [None]:
        kept = read_predictions(args.task, revision)
        shares = split_errors(np.array(kept["labels"]), np.array(kept["model"]))
        name = (revision or "workspace")[:12]
        print(f"{name:<14}" + "".join(f"{100 * shares[f]:>19.1f}" for f in FIELDS))


if __name__ == "__main__":
    main()
