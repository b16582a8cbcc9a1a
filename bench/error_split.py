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

With ``--causes``, on the synthetic store, the wrong-class segments are split further by
what the predicted class is to the video (:data:`CAUSES`, from the store's plan, recomputed
from the run's ``data.synthetic`` params without rendering):

- **confuser (audio)**, **(visual)**, **(both)**: the class mixed into the video's own
  sound, look, or both (its confusers);
- **confusable pair**: the other class of the video's class's confusable pair
  (:data:`pipeline.data.synthetic.CONFUSABLE_PAIRS`);
- **clutter**: the class of a silent object standing in the video's visual maps;
- **in the video**: a class heard or seen somewhere in the video (a distractor region);
- **unrelated**: none of these; nothing in the video points to it.

Usage, from the repository root::

    python -m bench.error_split [--task sel] [--causes] [REV ...]   # no REV: the workspace
"""

import argparse
import inspect
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from pipeline.data import store, synthetic

FIELDS = ("right", "wrong class", "missed", "false alarm", "video class right")
CAUSES = (
    "confuser (audio)",
    "confuser (visual)",
    "confuser (both)",
    "confusable pair",
    "clutter",
    "in the video",
    "unrelated",
)
_PAIRED = {a: b for pair in synthetic.CONFUSABLE_PAIRS for a, b in (pair, pair[::-1])}


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


def cause(video: synthetic.SyntheticVideo, predicted: int) -> str:
    """What a wrong event class ``predicted`` for a segment is to ``video`` (:data:`CAUSES`)."""
    audio, visual = (video.confusers[m][0] for m in synthetic.MODALITIES)
    if predicted == audio == visual:
        return "confuser (both)"
    if predicted in (audio, visual):
        return f"confuser ({'audio' if predicted == audio else 'visual'})"
    if _PAIRED.get(video.cls) == predicted:
        return "confusable pair"
    if predicted in {cls for cls, _ in video.clutter}:
        return "clutter"
    if predicted in {*video.audible.tolist(), *video.visible.tolist()}:
        return "in the video"
    return "unrelated"


def wrong_class_causes(
    labels: np.ndarray,
    predictions: np.ndarray,
    videos: Sequence[synthetic.SyntheticVideo],
    background: int = store.BACKGROUND,
) -> dict[str, float]:
    """The wrong-class segments by :func:`cause`, each a share of all segments.

    Args:
        labels: ``(n, T)`` true classes.
        predictions: ``(n, T)`` predicted classes.
        videos: the ``n`` videos' plans, in the same order.
        background: index of the background class.
    """
    wrong = (labels != background) & (predictions != background) & (labels != predictions)
    counts = dict.fromkeys(CAUSES, 0)
    for i, t in zip(*np.nonzero(wrong), strict=True):
        counts[cause(videos[i], int(predictions[i, t]))] += 1
    return {name: count / labels.size for name, count in counts.items()}


def synthetic_plan(config: dict) -> synthetic.SyntheticPlan:
    """The plan of the store that ``data.synthetic`` params ``config`` generate, unrendered.

    The same draws as :func:`pipeline.data.synthetic.generate_synthetic` (its defaults fill
    the keys ``config`` leaves out); ``tests/test_error_split.py`` checks them against it.
    """
    parameters = inspect.signature(synthetic.generate_synthetic).parameters.values()
    defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        raise SystemExit(f"error_split: data.synthetic: unknown keys {unknown}")
    config = {**defaults, **config}
    _, plan_rng, _ = synthetic._streams(config["seed"])
    sizes = {split: config[f"n_{split}"] for split in ("train", "val", "test")}
    mixing = {
        key: config[key] for key in ("audio_confusion", "visual_confusion", "shared_confusion")
    }
    return synthetic.plan_synthetic(
        plan_rng, sizes, config["n_background"], config["map_size"], config["full_fraction"],
        config["clutter"], mixing,
    )  # fmt: skip


def _show(path: str, revision: str | None) -> str:
    """The text of ``path`` in the workspace (``revision`` ``None``) or at git ``revision``."""
    if revision is None:
        if not Path(path).is_file():
            raise SystemExit(f"error_split: {path}: not found")
        return Path(path).read_text()
    shown = subprocess.run(
        ["git", "show", f"{revision}:{path}"], capture_output=True, text=True, check=False
    )
    if shown.returncode:
        raise SystemExit(f"error_split: {revision}:{path}: {shown.stderr.strip()}")
    return shown.stdout


def read_plan(revision: str | None) -> synthetic.SyntheticPlan:
    """The synthetic store's plan of the workspace's or ``revision``'s ``params.yaml``."""
    data = yaml.safe_load(_show("params.yaml", revision))["data"]
    if data["source"] != "synthetic":
        raise SystemExit(
            f"error_split: --causes needs data.source synthetic, found {data['source']!r}"
        )
    return synthetic_plan(data["synthetic"])


def read_predictions(task: str, revision: str | None) -> dict:
    """``reports/predictions/<task>.json`` of the workspace or of git ``revision``."""
    path = f"reports/predictions/{task}.json"
    if revision is None and not Path(path).is_file():
        raise SystemExit(f"error_split: {path}: not found (run `dvc repro evaluate@{task}`)")
    return json.loads(_show(path, revision))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="sel", help="sel, wsel, wsel_refined (default sel)")
    parser.add_argument(
        "--causes", action="store_true", help="split the wrong-class segments (synthetic store)"
    )
    parser.add_argument("revisions", nargs="*", help="git revisions (default: the workspace)")
    args = parser.parse_args(argv)
    fields = FIELDS + (CAUSES if args.causes else ())
    print(f"{'run':<14}" + "".join(f"{field:>{len(field) + 2}}" for field in fields) + "   (%)")
    for revision in args.revisions or [None]:
        kept = read_predictions(args.task, revision)
        labels, predictions = np.array(kept["labels"]), np.array(kept["model"])
        shares = split_errors(labels, predictions)
        if args.causes:
            plan = read_plan(revision)
            videos = [plan.videos[row] for row in kept["rows"]]
            shares |= wrong_class_causes(labels, predictions, videos)
        name = (revision or "workspace")[:12]
        print(f"{name:<14}" + "".join(f"{100 * shares[f]:>{len(f) + 2}.1f}" for f in fields))


if __name__ == "__main__":
    main()
