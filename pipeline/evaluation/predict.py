"""Prediction on a user's video: per-second features, segment classes, a timeline.

The video is cut into one-second segments (:mod:`pipeline.features.decode`), any number
``T >= 1`` of them, and its features made with the recipe the model was trained on. The
models were trained on AVE's 10-segment videos, so a longer video is scored in windows of
10 segments: ``[0, 10)``, ``[10, 20)``, …, and a last window ``[T - 10, T)`` that overlaps
the one before and gives only the segments not yet scored. Every segment is thus scored
with the context length of training. A video of at most 10 segments is scored whole. Every
model of the registry accepts any ``T``, except EDRNet, whose decomposition shortens the
sequence by ``kernel - 1`` per layer and so needs ``T >= layers (kernel - 1) + 1``
(9 with its defaults): a shorter video is refused with that number.
"""

import numpy as np
import torch

from pipeline.data.store import BACKGROUND, N_CLASSES, T
from pipeline.errors import PipelineError
from pipeline.evaluation.postprocess import b2ilc
from pipeline.models.base import AVELModel


def window_starts(segments: int, window: int = T) -> list[int]:
    """First segment of each scoring window (see the module docstring).

    Args:
        segments: number of segments ``T`` of the video (``>= 1``).
        window: segments per window (default 10).
    """
    if segments <= window:
        return [0]
    starts = list(range(0, segments - window + 1, window))
    if starts[-1] + window < segments:
        starts.append(segments - window)
    return starts


def check_model_length(model: AVELModel, segments: int, video: str) -> None:
    """Refuse a video shorter than the model's shortest input (EDRNet), naming both."""
    needed = model.min_segments
    if segments < needed:
        raise PipelineError(
            f"{video}: expected at least {needed} one-second segments for model "
            f"{type(model).__name__} (model.layers and model.kernel fix it), found {segments}"
        )


@torch.no_grad()
def segment_scores(
    model: AVELModel, audio: np.ndarray, visual: np.ndarray, device: torch.device
) -> np.ndarray:
    """Raw segment scores of one video, scored in windows of 10 segments.

    Args:
        model: a registry model in eval mode.
        audio: ``(T, A)`` audio features.
        visual: ``(T, H, W, C)`` visual maps (averaged over ``H x W`` for models that take
            pooled features).
        device: where the model lives.

    Returns:
        ``(T, C)`` float32 scores.
    """
    audio_t = torch.from_numpy(audio).float().to(device)  # (T, A)
    visual_t = torch.from_numpy(visual).float().to(device)  # (T, H, W, C)
    if not model.needs_maps:
        visual_t = visual_t.mean(dim=(1, 2))  # (T, C)
    segments = audio_t.shape[0]
    parts, covered = [], 0
    for start in window_starts(segments):
        end = min(start + T, segments)
        scores = model(audio_t[None, start:end], visual_t[None, start:end])[0]  # (w, C)
        parts.append(scores[covered - start :])
        covered = end
    return torch.cat(parts).float().cpu().numpy()  # (T, C)


def default_class_names() -> list[str]:
    """Class indices as names, 28 as ``background`` (a store without ``Annotations.txt``)."""
    return [str(i) for i in range(BACKGROUND)] + ["background"]


def timeline(
    scores: np.ndarray, class_names: list[str], with_b2ilc: bool
) -> tuple[dict[str, np.ndarray], np.ndarray, list[dict]]:
    """Segment classes and probabilities of a video's scores.

    Args:
        scores: ``(T, C)`` raw scores.
        class_names: a name per class (``C == 29``).
        with_b2ilc: also give the predictions after B2IL correction (seed 002,
            :func:`pipeline.evaluation.postprocess.b2ilc`).

    Returns:
        ``(rows, probabilities, segments)``: the named class sequences (``prediction`` and,
        when asked, ``b2ilc``); the ``(T, C)`` softmax probabilities; and one JSON record
        per segment.
    """
    if scores.shape[-1] != N_CLASSES or len(class_names) != N_CLASSES:
        raise PipelineError(
            f"prediction: expected {N_CLASSES} classes, found scores of shape {scores.shape} "
            f"and {len(class_names)} class names"
        )
    probabilities = torch.softmax(torch.from_numpy(scores).double(), dim=-1).numpy()  # (T, C)
    rows = {"prediction": scores.argmax(axis=-1)}  # (T,)
    if with_b2ilc:
        rows["b2ilc"] = b2ilc(rows["prediction"][None])[0]  # (T,)
    records = []
    for t, probs in enumerate(probabilities):
        record = {"segment": t, "start_s": t, "end_s": t + 1}
        for name, row in rows.items():
            index = int(row[t])
            record[name] = {
                "index": index,
                "class": class_names[index],
                "probability": float(probs[index]),
            }
        record["probabilities"] = {class_names[c]: float(p) for c, p in enumerate(probs)}
        records.append(record)
    return rows, probabilities, records
