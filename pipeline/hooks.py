"""Observation points of the training and prediction loops, for benchmarks.

The library calls the installed :class:`Hooks` at fixed points: where a training loader is
made, around each training epoch, around each forward pass over a dataset, around the
slice labelling of refine (seed 004 Step 2) and after each read of visual maps from file.
The default hooks do nothing but run what they wrap. ``bench/scale.py`` installs its own
(:func:`install`) to bound and time a stage's work in the stage's process, instead of
replacing library functions.
"""

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np


class Hooks:
    """The default hooks: each runs what it wraps, unchanged."""

    def training_loader(self, loader: Iterable) -> Iterable:
        """The loader a training epoch iterates, given the shuffled training loader."""
        return loader

    def epoch(self, run: Callable[[], float], loader: Iterable) -> float:
        """One training epoch: ``run()`` returns its mean loss."""
        return run()

    def forward_pass(self, run: Callable[[Iterable], np.ndarray], loader: Iterable) -> np.ndarray:
        """Scores ``(n, T, C)`` of every video of ``loader``: ``run(batches)`` predicts."""
        return run(loader)

    def slice_labels(
        self,
        run: Callable[[np.ndarray, np.ndarray], np.ndarray],
        videos: np.ndarray,
        partners: np.ndarray,
        batch_size: int,
    ) -> np.ndarray:
        """Slice label sets ``(n, T1, C)`` of ``videos``: ``run(videos, partners)`` labels."""
        return run(videos, partners)

    def read(self, nbytes: int) -> None:
        """Visual maps of ``nbytes`` (as stored) were read from file (in any process)."""


_installed: list[Hooks] = [Hooks()]


def current() -> Hooks:
    """The installed hooks."""
    return _installed[0]


def install(hooks: Any) -> None:
    """Install ``hooks`` (a :class:`Hooks`) for the rest of the process."""
    _installed[0] = hooks
