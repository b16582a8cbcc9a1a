"""Segment labels from the official ``Annotations.txt``.

Each line is ``Category&YouTubeID&Quality&Start&End``, one line per video in store row
order; ``Start``/``End`` are whole seconds (= segments) with the end exclusive. The class
index of a category is its order of first appearance in the file (docs/design.md §3), which is
the order of the official ``labels.h5``. An empty event (``Start == End``, as in training
row 26 of the real data) leaves the whole video background.
"""

import os
from pathlib import Path

import numpy as np

from pipeline.data.store import ANNOTATIONS, BACKGROUND, N_CLASSES, T
from pipeline.errors import PipelineError

_HEADER_FIRST_FIELD = "category"


def _parse_line(path: Path, number: int, line: str) -> tuple[str, int, int]:
    fields = line.split("&")
    if len(fields) != 5:
        raise PipelineError(
            f"{path}: line {number}: expected 5 '&'-separated fields "
            f"(Category&YouTubeID&Quality&Start&End), found {len(fields)}"
        )
    category, start, end = fields[0], fields[3], fields[4]
    try:
        start, end = int(start), int(end)
    except ValueError:
        raise PipelineError(
            f"{path}: line {number}: expected integer Start and End, found {start!r}, {end!r}"
        ) from None
    if not 0 <= start <= end <= T:
        raise PipelineError(
            f"{path}: line {number}: expected 0 <= Start <= End <= {T}, found {start}, {end}"
        )
    return category, start, end


def annotation_lines(path: str | os.PathLike) -> list[tuple[int, str]]:
    """The non-empty lines of an annotation-format file, numbered from 1, header skipped.

    Serves ``Annotations.txt`` and the split files of the raw-video release
    (``trainSet.txt``, ``valSet.txt``, ``testSet.txt``), which share its line format.
    A first line whose first field is ``Category`` is a header.

    Args:
        path: the file.

    Returns:
        ``(line number, stripped line)`` pairs in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: file not found")
    lines = [line.strip() for line in path.read_text().splitlines()]
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line]
    if numbered and numbered[0][1].split("&")[0].strip().lower() == _HEADER_FIRST_FIELD:
        numbered = numbered[1:]
    return numbered


def parse_annotations(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Parse ``Annotations.txt`` into class names and segment class indices.

    A first line whose first field is ``Category`` is taken as a header and skipped.

    Args:
        path: the annotation file.

    Returns:
        ``(classes, labels)``: class names in order of first appearance, and ``(n, T)``
        int64 class indices with ``28`` for background.

    Raises:
        PipelineError: a malformed line or more than 28 categories.
    """
    path = Path(path)
    numbered = annotation_lines(path)
    classes: list[str] = []
    labels = np.full((len(numbered), T), BACKGROUND, dtype=np.int64)  # (n, T)
    for row, (number, line) in enumerate(numbered):
        category, start, end = _parse_line(path, number, line)
        if category not in classes:
            classes.append(category)
        labels[row, start:end] = classes.index(category)
    if len(classes) > N_CLASSES - 1:
        raise PipelineError(
            f"{path}: expected at most {N_CLASSES - 1} categories, found {len(classes)}"
        )
    return classes, labels


def one_hot(labels: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """One-hot encode class indices: ``(..., )`` int → ``(..., n_classes)`` float32."""
    return np.eye(n_classes, dtype=np.float32)[labels]


def class_names(store: str | os.PathLike) -> list[str] | None:
    """Names of the 29 class indices of a store that holds ``Annotations.txt``, else ``None``.

    Event classes are named in order of first appearance in the store's ``Annotations.txt``
    (the order of its ``labels.h5``, docs/design.md §3); index 28 is ``background``. An index
    no category reaches (a store with fewer than 28 categories) keeps its number.

    Args:
        store: the store directory.
    """
    path = Path(store) / ANNOTATIONS
    if not path.is_file():
        return None
    classes, _ = parse_annotations(path)
    names = [str(i) for i in range(N_CLASSES)]
    names[: len(classes)] = classes
    names[BACKGROUND] = "background"
    return names
