"""Figures: the evaluate stage's confusion matrix and timelines, and a video's predicted timeline.

Timeline cells show class indices (28 = ``bg``); with class names (a store holding
``Annotations.txt``, :func:`pipeline.data.annotations.class_names`) a legend below the
figure names every class shown, and the confusion matrix's axes are labelled by name.
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from pipeline.io import atomic_path  # noqa: E402

# One distinct colour per class (28 events from tab20 + tab20b, background light grey).
_CLASS_COLOURS = ListedColormap(
    [*plt.get_cmap("tab20").colors, *plt.get_cmap("tab20b").colors[:8], (0.9, 0.9, 0.9)]
)


def _cell_text(value: int) -> str:
    return "bg" if value == 28 else str(value)


def _legend(fig: plt.Figure, values: np.ndarray, names: list[str]) -> None:
    """A legend below the figure: colour, index and full name of each class in ``values``."""
    handles = [
        plt.Rectangle(
            (0, 0), 1, 1, color=_CLASS_COLOURS(int(c)), label=f"{_cell_text(c)}: {names[c]}"
        )
        for c in np.unique(values)
    ]
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=3,
        fontsize=7,
        frameon=False,
    )


def _save(fig: plt.Figure, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_confusion(
    matrix: np.ndarray,
    path: str | os.PathLike,
    title: str,
    class_names: list[str] | None = None,
) -> None:
    """Row-normalised confusion matrix (rows: true class, columns: predicted; 28 = bg).

    Args:
        matrix: ``(C, C)`` counts.
        path: PNG destination.
        title: figure title.
        class_names: a name per class for the axis ticks (default: indices).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)  # (C, C)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    image = ax.imshow(rates, cmap="viridis", vmin=0, vmax=1)
    if class_names is not None:
        ticks = range(len(class_names))
        ax.set_xticks(ticks, class_names, rotation=90, fontsize=6)
        ax.set_yticks(ticks, class_names, fontsize=6)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of the true class")
    _save(fig, path)


def _timeline_rows(ax: plt.Axes, rows: np.ndarray, labels: list[str], ticks: bool) -> None:
    """Draw ``(r, T)`` class rows as coloured cells, with their indices when they are wide."""
    ax.imshow(rows, cmap=_CLASS_COLOURS, vmin=-0.5, vmax=28.5, aspect="auto")
    t = rows.shape[1]
    if t <= 30:
        for (r, c), value in np.ndenumerate(rows):
            ax.text(c, r, _cell_text(value), ha="center", va="center", size=7)
    ax.set_yticks(range(len(labels)), labels)
    step = max(1, t // 20)
    ax.set_xticks(range(0, t, step), [str(s) for s in range(0, t, step)] if ticks else [])


def plot_timelines(
    labels: np.ndarray,
    predictions: np.ndarray,
    path: str | os.PathLike,
    title: str,
    class_names: list[str] | None = None,
) -> None:
    """Ground truth above prediction for a few videos; cells show the classes.

    Args:
        labels: ``(k, T)`` true classes.
        predictions: ``(k, T)`` predicted classes.
        path: PNG destination.
        title: figure title.
        class_names: a name per class, for a legend (default: none, indices only).
    """
    k, _ = labels.shape
    fig, axes = plt.subplots(k, 1, figsize=(7, 1.1 * k + 0.6), squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        rows = np.stack([labels[i], predictions[i]])  # (2, T)
        _timeline_rows(ax, rows, ["truth", "pred"], i == k - 1)
    axes[-1, 0].set_xlabel("segment (s)")
    if class_names is not None:
        _legend(fig, np.concatenate([labels.ravel(), predictions.ravel()]), class_names)
    fig.suptitle(title)
    _save(fig, path)


def plot_prediction(
    rows: dict[str, np.ndarray],
    probability: np.ndarray,
    class_names: list[str],
    path: str | os.PathLike,
    title: str,
) -> None:
    """A video's predicted timeline: class rows over its one-second segments, and confidence.

    Args:
        rows: named ``(T,)`` class sequences (the prediction, and its B2ILC correction).
        probability: ``(T,)`` probability of the predicted class of each segment.
        class_names: a name per class.
        path: PNG destination.
        title: figure title.
    """
    values = np.stack(list(rows.values()))  # (r, T)
    t = values.shape[1]
    fig, (top, bottom) = plt.subplots(
        2,
        1,
        figsize=(max(7, 0.45 * min(t, 40)), 1.0 + 0.5 * len(rows) + 1.2),
        gridspec_kw={"height_ratios": [len(rows), 1.4]},
        sharex=True,
    )
    _timeline_rows(top, values, list(rows), ticks=False)
    bottom.bar(range(t), probability, width=0.9, color="0.4")
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("probability", fontsize=7)
    bottom.set_xlabel("segment (s)")
    step = max(1, t // 20)
    bottom.set_xticks(range(0, t, step), [str(s) for s in range(0, t, step)])
    _legend(fig, values, class_names)
    fig.suptitle(title)
    _save(fig, path)
