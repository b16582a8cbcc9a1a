"""The test videos' timelines: data of seed 004's Fig. 4 style, and the filters of the page.

One timeline per video: the ground truth, then each compared run's predictions (its
``model`` output), as the ``segments`` and ``spans`` datasets of
:func:`pipeline.site.charts.timeline_chart`. A segment carries the run's probability of its
predicted class and its three most probable classes when the predictions file keeps them
(``model_top_classes``/``model_top_probabilities``, written by the evaluate stage).
"""

from dataclasses import dataclass

import numpy as np

from pipeline.site.charts import BACKGROUND, class_colours, class_label, ink
from pipeline.site.compare import disagreement
from pipeline.site.runs import Result

GROUND_TRUTH = "ground truth"


@dataclass
class Source:
    """One compared run: its label on the page and its evaluation."""

    label: str
    result: Result


def _probabilities(result: Result, video: int, names: list[str] | None) -> list:
    """Per segment (probability of the predicted class, top-classes text), or Nones."""
    kept = result.predictions
    predicted = kept["model"][video]  # (T,)
    if "model_top_classes" not in kept or "model_top_probabilities" not in kept:
        return [(None, None)] * len(predicted)
    classes = kept["model_top_classes"][video]  # (T, k)
    probabilities = kept["model_top_probabilities"][video]  # (T, k)
    out = []
    for t, chosen in enumerate(predicted):
        found = np.flatnonzero(classes[t] == chosen)
        p = float(probabilities[t][found[0]]) if found.size else None
        top = ", ".join(
            f"{class_label(int(c), names)} {float(q):.2f}"
            for c, q in zip(classes[t], probabilities[t], strict=True)
        )
        out.append((p, top))
    return out


def spans(source: str, classes: np.ndarray, names: list[str] | None) -> list[dict]:
    """The event spans of one row: maximal runs of one class other than background."""
    found = []
    colours = class_colours(names)[1]
    start = 0
    for t in range(1, len(classes) + 1):
        if t == len(classes) or classes[t] != classes[start]:
            if classes[start] != BACKGROUND:
                c = int(classes[start])
                found.append(
                    {
                        "source": source,
                        "t_mid": (start + t) / 2,
                        "class": class_label(c, names),
                        "ink": ink(colours[c]),
                    }
                )
            start = t
    return found


def timeline_datasets(
    video: int, labels: np.ndarray, sources: list[Source], names: list[str] | None
) -> dict[str, list[dict]]:
    """The ``segments`` and ``spans`` of one test video (row ``video`` of the predictions).

    Args:
        video: index of the video in the predictions files.
        labels: ``(n, T)`` true classes.
        sources: the compared runs.
        names: class names, or ``None``.
    """
    truth = labels[video]  # (T,)
    rows = [(GROUND_TRUTH, truth, [(None, None)] * len(truth))]
    for source in sources:
        kept = source.result.predictions["model"][video]  # (T,)
        rows.append((source.label, kept, _probabilities(source.result, video, names)))
    segments, spanned = [], []
    for label, classes, probabilities in rows:
        for t, (c, (p, top)) in enumerate(zip(classes, probabilities, strict=True)):
            segments.append(
                {
                    "source": label,
                    "t": t,
                    "t_end": t + 1,
                    "second": f"{t}-{t + 1} s",
                    "class": class_label(int(c), names),
                    "p": p,
                    "top": top,
                    "truth": class_label(int(truth[t]), names),
                }
            )
        spanned += spans(label, classes, names)
    return {"segments": segments, "spans": spanned}


def video_title(video: int, row: int, labels: np.ndarray, names: list[str] | None) -> str:
    """``test video 3 (store row 812): <its event classes>``."""
    events = [class_label(int(c), names) for c in dict.fromkeys(labels) if c != BACKGROUND]
    return f"test video {video} (store row {row}): {', '.join(events) or 'background only'}"


def filters(labels: np.ndarray, sources: list[Source]) -> dict[str, list[int]]:
    """The page's filters: name -> indices of the videos it keeps.

    ``all``; ``models disagree`` (two runs differ on some segment); ``some run wrong``;
    ``every run wrong``; and per run, ``<run> wrong`` and ``only <run> wrong``.
    """
    found = disagreement(labels, [s.result.predictions["model"] for s in sources])
    wrong = found["wrong"]  # (R, n)
    chosen = {
        "all videos": np.ones(len(labels), dtype=bool),
        "models disagree": found["disagree"],
        "some model wrong": wrong.any(axis=0),
        "every model wrong": wrong.all(axis=0),
    }
    for r, source in enumerate(sources):
        chosen[f"{source.label} wrong"] = wrong[r]
        if len(sources) > 1:
            others = np.delete(wrong, r, axis=0).any(axis=0)
            chosen[f"only {source.label} wrong"] = wrong[r] & ~others
    return {name: np.flatnonzero(keep).tolist() for name, keep in chosen.items()}
