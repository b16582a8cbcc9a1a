"""Figures of the evaluate stage: a confusion matrix and ground-truth/prediction timelines."""

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


def _save(fig: plt.Figure, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_confusion(matrix: np.ndarray, path: str | os.PathLike, title: str) -> None:
    """Row-normalised confusion matrix (rows: true class, columns: predicted; 28 = bg).

    Args:
        matrix: ``(C, C)`` counts.
        path: PNG destination.
        title: figure title.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)  # (C, C)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    image = ax.imshow(rates, cmap="viridis", vmin=0, vmax=1)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of the true class")
    _save(fig, path)


def plot_timelines(
    labels: np.ndarray, predictions: np.ndarray, path: str | os.PathLike, title: str
) -> None:
    """Ground truth above prediction for a few videos; cells show class indices.

    Args:
        labels: ``(k, T)`` true classes.
        predictions: ``(k, T)`` predicted classes.
        path: PNG destination.
        title: figure title.
    """
    k, t = labels.shape
    fig, axes = plt.subplots(k, 1, figsize=(7, 1.1 * k + 0.6), squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        rows = np.stack([labels[i], predictions[i]])  # (2, T)
        ax.imshow(rows, cmap=_CLASS_COLOURS, vmin=-0.5, vmax=28.5, aspect="auto")
        for (r, c), value in np.ndenumerate(rows):
            ax.text(c, r, "bg" if value == 28 else str(value), ha="center", va="center", size=7)
        ax.set_yticks([0, 1], ["truth", "pred"])
        ax.set_xticks(range(t), [str(s) for s in range(t)] if i == k - 1 else [])
    axes[-1, 0].set_xlabel("segment (s)")
    fig.suptitle(title)
    _save(fig, path)
