"""Why label refinement marks event slices background-only: the base model's evidence.

Step 2 of seed 004 §4.2 splices each training video :math:`V^{(i)}` with a
background-only video :math:`V^{(j)}` (eq 9) and keeps an event of :math:`V^{(i)}` in a
slice when the base model's video-level probability of it reaches tau (eqs 10-11). §4.3
names the risk: the synthetic video "is dominated by the events in :math:`V^{(2)}`", and
the model "may lose confidence in the events occurring in the few retained segments". This
bench measures that risk on a workspace's base model (``data/models/wsel.pt``, the output
of ``train_wsel``) and store, with the refine stage's own partners (same
``train.seed``):

- **own video**: the share of event videos whose class, on the video alone, has a
  probability of at least tau (the base model as a video-level predictor);
- **partner alone**: quantiles of the background probability of the background-only
  partner videos on their own;
- **spliced**: the mean background probability of the synthetic videos, and the slices
  whose window lies wholly inside the event yet are marked background-only (each one is a
  false background label of Step 3), and how many of those lie in videos whose class the
  model detects on the video alone (lost to the splice, not to a wrong video prediction);
- **per tau**: the slices marked background-only, and how many of them truly are.

Usage, from a workspace root after ``dvc repro refine`` (or in an experiment's checkout)::

    python -m bench.refine_diagnosis [--taus 0.01 0.05 0.1] [--batch 64]
"""

import argparse
from collections.abc import Sequence

import numpy as np
import torch

from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.data import store
from pipeline.data.dataset import AVEDataset
from pipeline.device import resolve_device
from pipeline.refinement.labels import slice_truth
from pipeline.refinement.slices import slice_starts, synthetic_videos, window_index
from pipeline.training.checkpoint import load_checkpoint
from stages.refine import _partners

QUANTILES = (0.1, 0.5, 0.9)


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def video_probabilities(model, dataset, rows: np.ndarray, batch: int) -> np.ndarray:
    """The base model's video-level probabilities ``(n, C)`` of dataset items ``rows``."""
    chunks, device = [], _device(model)
    for begin in range(0, len(rows), batch):
        items = dataset.__getitems__(rows[begin : begin + batch].tolist())
        scores = model(items["audio"].to(device), items["visual"].to(device)).float()
        chunks.append(model.video_probabilities(scores).cpu().numpy())  # (B, C)
    return np.concatenate(chunks)


@torch.no_grad()
def spliced_probabilities(
    model, dataset, videos: np.ndarray, partners: np.ndarray, starts, window: int, batch: int
) -> np.ndarray:
    """Video-level probabilities ``(n, T1, C)`` of the synthetic videos of seed 004 eq 9.

    The refine stage's loop (:func:`pipeline.refinement.labels.estimate_slice_labels`)
    before its threshold, written again here rather than factored out of it: that module is
    a code dependency of every weak table experiment, and a change there would make them
    all stale. ``tests/test_refine_diagnosis.py`` fails if the two drift apart.
    """
    chunks, device = [], _device(model)
    for begin in range(0, len(videos), batch):
        first = dataset.__getitems__(videos[begin : begin + batch].tolist())
        second = dataset.__getitems__(partners[begin : begin + batch].tolist())
        spliced = [
            synthetic_videos(first[k].to(device), second[k].to(device), starts, window)
            for k in ("audio", "visual")
        ]  # (B, T1, T, ...) each
        scores = model(*(x.flatten(0, 1) for x in spliced)).float()  # (B * T1, T, C)
        probabilities = model.video_probabilities(scores)  # (B * T1, C)
        n = len(first["labels"])
        chunks.append(probabilities.unflatten(0, (n, len(starts))).cpu().numpy())
    return np.concatenate(chunks)


def diagnose(
    own: np.ndarray,
    partner: np.ndarray,
    spliced: np.ndarray,
    segment_labels: np.ndarray,
    starts: Sequence[int],
    window: int,
    taus: Sequence[float],
    background: int = store.BACKGROUND,
) -> dict:
    """The figures of the module docstring from the base model's probabilities.

    Args:
        own: ``(n, C)`` probabilities of the event videos alone.
        partner: ``(m, C)`` probabilities of the background-only videos alone.
        spliced: ``(n, T1, C)`` probabilities of the synthetic videos (eq 9).
        segment_labels: ``(n, T)`` true class indices of the event videos.
        starts: the ``T1`` 0-based slice starts.
        window: slice length ``N``.
        taus: detection thresholds to count at; the first is the one of "own video" and of
            the wholly-event slices.
        background: index of the background class.

    Returns:
        A dict of the figures (shares in [0, 1], counts as ints).
    """
    n_classes = spliced.shape[-1]
    events = np.eye(n_classes, dtype=bool)[segment_labels].any(axis=1)  # (n, C)
    events[:, background] = False
    detected = np.where(events[:, None, :], spliced, 0.0).max(axis=-1)  # (n, T1): eq 10
    truth = slice_truth(segment_labels, starts, window, n_classes, background)  # (n, T1, C)
    truly_background = ~truth.any(axis=-1)  # (n, T1)
    inside = segment_labels[:, window_index(starts, window)] != background  # (n, T1, N)
    wholly_event = inside.all(axis=-1)  # (n, T1)
    own_detected = np.where(events, own, 0.0).max(axis=-1)  # (n,)
    first = taus[0]
    return {
        "videos": len(own),
        "slices": int(detected.size),
        "true_background_slices": int(truly_background.sum()),
        "own_video_detected": float(np.mean(own_detected >= first)),
        "partner_background_quantiles": np.quantile(partner[:, background], QUANTILES).tolist(),
        "spliced_background_mean": float(spliced[..., background].mean()),
        "wholly_event_slices": int(wholly_event.sum()),
        "wholly_event_marked_background": int((wholly_event & (detected < first)).sum()),
        "wholly_event_marked_background_detected_alone": int(
            (wholly_event & (detected < first) & (own_detected >= first)[:, None]).sum()
        ),
        "per_tau": {
            tau: {
                "marked_background": int((detected < tau).sum()),
                "truly_background": int(((detected < tau) & truly_background).sum()),
            }
            for tau in taus
        },
    }


def report(figures: dict) -> str:
    """The figures of :func:`diagnose` as lines of text."""
    taus = list(figures["per_tau"])
    quantiles = zip(QUANTILES, figures["partner_background_quantiles"], strict=True)
    lines = [
        f"{figures['videos']} event videos, {figures['slices']} slices, "
        f"{figures['true_background_slices']} truly background-only",
        f"own video: class detected at tau {taus[0]} in "
        f"{100 * figures['own_video_detected']:.1f} % of the videos",
        "partner alone: background probability at quantiles "
        + ", ".join(f"{q}: {p:.3f}" for q, p in quantiles),
        f"spliced: mean background probability {figures['spliced_background_mean']:.3f}",
        f"slices wholly inside the event: {figures['wholly_event_slices']}, marked "
        f"background-only at tau {taus[0]}: {figures['wholly_event_marked_background']}, "
        f"{figures['wholly_event_marked_background_detected_alone']} of them in videos whose "
        "class is detected alone",
    ]
    for tau, counts in figures["per_tau"].items():
        lines.append(
            f"tau {tau}: {counts['marked_background']} marked background-only, "
            f"{counts['truly_background']} of them truly"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taus", type=float, nargs="+", help="default: refine.tau, 0.01, 0.1")
    parser.add_argument("--batch", type=int, default=64, help="videos per forward pass")
    args = parser.parse_args(argv)
    params = load_params(("refine", "train"), typed=True)
    config, seed = params["refine"], params["train"].seed
    taus = args.taus or [config.tau, 0.01, 0.1]
    device = resolve_device(params["train"].device)
    model, _ = load_checkpoint(paths.checkpoint("wsel"), device)
    dataset = AVEDataset(
        paths.STORE, "train", paths.pooled_features(model.needs_maps), background_videos=True
    )
    n = len(dataset) - dataset.n_background_videos
    starts = slice_starts(store.T, config.window, config.stride)
    videos, partners = np.arange(n), _partners(dataset, n, seed)
    figures = diagnose(
        video_probabilities(model, dataset, videos, args.batch),
        video_probabilities(model, dataset, np.arange(n, len(dataset)), args.batch),
        spliced_probabilities(model, dataset, videos, partners, starts, config.window, args.batch),
        dataset.labels[:n],
        starts,
        config.window,
        taus,
    )
    print(report(figures))


if __name__ == "__main__":
    main()
