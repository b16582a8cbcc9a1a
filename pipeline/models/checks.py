"""Argument checks shared by the model constructors: a bad value is a user error."""

import torch

from pipeline.errors import PipelineError


def check_int(owner: str, name: str, value: int, minimum: int = 1) -> None:
    """Raise :class:`PipelineError` unless ``value`` is an integer ``>= minimum``.

    Args:
        owner: what takes the argument (named in the message).
        name: the argument's name.
        value: its value.
        minimum: the smallest valid value (default: 1).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PipelineError(f"{owner} {name}: expected an integer >= {minimum}, found {value!r}")


def check_probability(owner: str, name: str, value: float) -> None:
    """Raise :class:`PipelineError` unless ``value`` is a number in ``[0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise PipelineError(f"{owner} {name}: expected a number in [0, 1), found {value!r}")


def check_map_inputs(
    owner: str, audio: torch.Tensor, visual: torch.Tensor, dims: tuple
) -> torch.Tensor:
    """Check ``(B, T, A)`` audio and ``(B, T, H, W, C)`` maps; return ``(B, T, R, C)`` regions.

    Args:
        owner: the model's name, for the messages.
        audio: the audio features.
        visual: ``(B, T, H, W, C)`` maps or ``(B, T, R, C)`` regions.
        dims: ``(audio_dim, n_regions, visual_dim)`` expected.
    """
    audio_dim, n_regions, visual_dim = dims
    if audio.dim() != 3 or audio.shape[-1] != audio_dim:
        raise PipelineError(
            f"{owner} audio: expected shape (B, T, {audio_dim}), found {tuple(audio.shape)}"
        )
    regions = visual.flatten(2, 3) if visual.dim() == 5 else visual  # (B, T, R, C)
    if regions.dim() != 4 or regions.shape[2:] != (n_regions, visual_dim):
        raise PipelineError(
            f"{owner} visual: expected shape (B, T, H, W, {visual_dim}) with H*W = {n_regions} "
            f"or (B, T, {n_regions}, {visual_dim}), found {tuple(visual.shape)}"
        )
    if visual.shape[:2] != audio.shape[:2]:
        raise PipelineError(
            f"{owner} audio and visual: expected the same (B, T), found "
            f"{tuple(audio.shape[:2])} and {tuple(visual.shape[:2])}"
        )
    return regions
