r"""Slices of seed 004 §4.2: window starts and the synthetic videos of eq 9.

A slice is the window of ``N`` segments starting at :math:`t_1`; window starts are
0-based here: the paper's :math:`t_1 \in \{1, 1 + s, \dots, T - N + 1\}` is
``[0, s, ..., T - N]``. The auxiliary objective (§4.3, :mod:`pipeline.losses`), the slice
labels of Step 2 (:mod:`pipeline.refinement.labels`) and the label-refinement loss of Step 3 all use
these.
"""

from collections.abc import Sequence

import numpy as np
import torch

from pipeline.errors import PipelineError


def validate_window(T: int, window: int, stride: int) -> None:
    r"""Check a refinement window ``N`` and stride ``s`` (seed 004 §4.2, §4.3, App. A.2).

    The rules: :math:`s \geq 1`; :math:`1 \leq N \leq T`; :math:`s \mid (T - N)` so that the
    slices cover every segment (A.2 (i)); :math:`N < \frac{T+1}{2}` so that the complements
    of the windows cover every segment of the second video and eq 14 holds (§4.3, A.2 (iii)).

    Args:
        T: segments per video.
        window: window size ``N`` (``refine.window``).
        stride: stride ``s`` (``refine.stride``).

    Raises:
        PipelineError: naming the parameter, the rule broken and the values.
    """
    if stride < 1:
        raise PipelineError(f"refine.stride: expected stride >= 1, found {stride}")
    if not 1 <= window <= T:
        raise PipelineError(f"refine.window: expected 1 <= window <= T = {T}, found {window}")
    if 2 * window >= T + 1:
        raise PipelineError(
            f"refine.window: expected window < (T + 1) / 2 = {(T + 1) / 2} (seed 004 eq 14), "
            f"found {window}"
        )
    if (T - window) % stride:
        raise PipelineError(
            f"refine.stride: expected stride to divide T - window = {T} - {window} = "
            f"{T - window} so the slices cover every segment, found stride {stride}"
        )


def slice_starts(T: int, window: int, stride: int) -> list[int]:
    r"""0-based window starts :math:`t_1` (seed 004 §4.2 eq 13), after :func:`validate_window`.

    There are :math:`T_1 = (T - N)/s + 1` of them, e.g. ``[0, 2, 4, 6]`` for
    ``T = 10, N = 4, s = 2``.

    Args:
        T: segments per video.
        window: window size ``N``.
        stride: stride ``s``.

    Returns:
        The ``T1`` starts ``[0, s, ..., T - N]``.
    """
    validate_window(T, window, stride)
    return list(range(0, T - window + 1, stride))


def window_index(starts: Sequence[int], window: int) -> np.ndarray:
    """Segment indices of each slice: ``(T1, N)`` with row ``k`` = ``starts[k] + [0, N)``."""
    return np.asarray(starts, dtype=np.int64)[:, None] + np.arange(window)  # (T1, N)


def synthetic_videos(
    first: torch.Tensor, second: torch.Tensor, starts: Sequence[int], window: int
) -> torch.Tensor:
    r"""The synthetic videos :math:`\tilde{V}^{(i;t_1)}` of seed 004 §4.2 eq 9, for all :math:`t_1`.

    Segment ``t`` of synthetic video ``k`` is ``first[:, t]`` inside the window
    ``[starts[k], starts[k] + N - 1]`` and ``second[:, t]`` outside it. Works for any
    per-segment features (audio ``(B, T, A)``, visual maps ``(B, T, 7, 7, 512)``) and is
    differentiable in both inputs.

    The result is ``T1`` times the size of one input and is written once (a broadcast
    :func:`torch.where`, no intermediate copies); callers that hold large maps should chunk
    over the batch and flatten ``(B, T1)`` for the model.

    Args:
        first: ``(B, T, ...)`` features of the videos :math:`V^{(i)}` whose windows are kept.
        second: ``(B, T, ...)`` features of the videos :math:`V^{(j)}` that fill the rest.
        starts: the ``T1`` 0-based window starts (:func:`slice_starts`).
        window: window size ``N``.

    Returns:
        ``(B, T1, T, ...)`` synthetic videos.
    """
    if first.shape != second.shape:
        raise PipelineError(
            f"synthetic videos: expected two feature tensors of the same shape, found "
            f"{tuple(first.shape)} and {tuple(second.shape)}"
        )
    t = torch.arange(first.shape[1], device=first.device)  # (T,)
    begin = torch.as_tensor(starts, device=first.device)[:, None]  # (T1, 1)
    keep = (t >= begin) & (t < begin + window)  # (T1, T)
    keep = keep.view(1, *keep.shape, *([1] * (first.dim() - 2)))  # (1, T1, T, 1, ...)
    return torch.where(keep, first.unsqueeze(1), second.unsqueeze(1))  # (B, T1, T, ...)
