"""How well a WSEL base model fits its own training videos' classes, and how hard it is pulled.

A weakly supervised model learns each video's class from the video label alone. This bench
reads a workspace's WSEL model (``data/models/wsel.pt``, the output of ``train_wsel``) and
store, and reports for the training and the test event videos:

- **class found**: the share of videos whose top event class under the model's own video
  prediction (``video_probabilities``) is the video's event class;
- **probability of the true class** of the videos whose class is *not* found, at the
  quantiles 0.1, 0.5, 0.9;
- **pull**: the norm of the gradient of the model's own ``wsel_loss`` with respect to the
  video's segment scores, per video (the batch mean's gradient times the batch size), its
  median over the videos whose class is found and over those whose class is not.
- **event length**: the mean number of event segments of the videos whose class is found
  and of those whose class is not.
- **dead classes**: the event classes of the split that are the top event class of none
  of its videos, and how many videos they hold (all of them missed).

Under a loss of the log-likelihood kind (DPNet's mean-pooled cross-entropy, PSP's binary
cross-entropy) a video whose class has a small probability pulls hardest; under the
multi-label soft margin loss applied to softmax probabilities (seed 004 eq 6, the official
CMRAN weak code, Tian et al.'s weak code: :func:`pipeline.losses.mil_loss`) its pull
vanishes with that probability, since the softmax's derivative does.

Usage, from a workspace root after ``dvc repro train_wsel`` (or in an experiment's
checkout)::

    python -m bench.wsel_fit [--batch 64]
"""

import argparse
from collections.abc import Sequence

import numpy as np
import torch

from bench.error_split import main_event_class
from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.data import store
from pipeline.data.dataset import AVEDataset
from pipeline.device import resolve_device
from pipeline.losses import video_labels_from_segments
from pipeline.training.checkpoint import load_checkpoint

QUANTILES = (0.1, 0.5, 0.9)


def probabilities_and_pull(model, dataset, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Video probabilities ``(n, C)`` and the per-video pull ``(n,)`` of ``dataset``'s items.

    The pull of video ``i`` is :math:`\\lVert \\partial (B \\cdot \\mathcal{L}) / \\partial
    x^{(i)} \\rVert` for the model's ``wsel_loss`` :math:`\\mathcal{L}` (a mean over the
    batch of ``B`` videos, so that each video's gradient is its own loss's) and its segment
    scores :math:`x^{(i)}` ``(T, C)``.
    """
    device = next(model.parameters()).device
    probabilities, pulls = [], []
    for begin in range(0, len(dataset), batch):
        items = dataset.__getitems__(list(range(begin, min(begin + batch, len(dataset)))))
        with torch.no_grad():
            scores = model(items["audio"].to(device), items["visual"].to(device)).float()
        scores.requires_grad_(True)  # (B, T, C)
        labels = video_labels_from_segments(items["labels"].to(device), scores.shape[-1])
        loss = model.wsel_loss(scores, labels) * len(scores)
        (gradient,) = torch.autograd.grad(loss, scores)  # (B, T, C)
        pulls.append(gradient.flatten(1).norm(dim=1).cpu().numpy())  # (B,)
        with torch.no_grad():
            probabilities.append(model.video_probabilities(scores).cpu().numpy())  # (B, C)
    return np.concatenate(probabilities), np.concatenate(pulls)


def fit_figures(
    probabilities: np.ndarray,
    pulls: np.ndarray,
    segment_labels: np.ndarray,
    background: int = store.BACKGROUND,
) -> dict:
    """The figures of the module docstring for the event videos among ``segment_labels``.

    Args:
        probabilities: ``(n, C)`` video probabilities.
        pulls: ``(n,)`` per-video gradient norms.
        segment_labels: ``(n, T)`` true class indices; a video's event class is its most
            frequent non-background class (AVE videos have one); videos without one are
            left out.
        background: index of the background class.

    Returns:
        ``videos``, ``found`` (share), ``missed_true_probability`` (quantiles),
        ``pull_found`` and ``pull_missed`` (medians), ``length_found`` and
        ``length_missed`` (mean event segments); ``nan`` when no video is in the group;
        ``dead_classes`` (sorted list) and ``dead_videos``.
    """
    main = main_event_class(segment_labels, background)  # (n,), -1 without an event
    has_event = main >= 0  # (n,)
    true = main[has_event]  # (k,)
    event_probabilities = np.delete(probabilities[has_event], background, axis=1)  # (k, C-1)
    # background is the last class, so event indices are unchanged by the deletion
    top = event_probabilities.argmax(axis=1)  # (k,)
    found = top == true  # (k,)
    dead = sorted(set(true.tolist()) - set(top.tolist()))
    true_probability = probabilities[has_event][np.arange(len(true)), true]  # (k,)
    pull = pulls[has_event]
    length = (segment_labels[has_event] != background).sum(axis=1)  # (k,)

    def median(values: np.ndarray) -> float:
        return float(np.median(values)) if len(values) else float("nan")

    def mean(values: np.ndarray) -> float:
        return float(np.mean(values)) if len(values) else float("nan")

    missed = true_probability[~found]
    return {
        "videos": int(has_event.sum()),
        "found": float(found.mean()),
        "missed_true_probability": (
            np.quantile(missed, QUANTILES).tolist() if len(missed) else [float("nan")] * 3
        ),
        "pull_found": median(pull[found]),
        "pull_missed": median(pull[~found]),
        "length_found": mean(length[found]),
        "length_missed": mean(length[~found]),
        "dead_classes": dead,
        "dead_videos": int(np.isin(true, dead).sum()),
    }


def report(split: str, figures: dict) -> str:
    """One line of :func:`fit_figures`."""
    quantiles = ", ".join(f"{p:.3f}" for p in figures["missed_true_probability"])
    return (
        f"{split}: {figures['videos']} event videos, class found {100 * figures['found']:.1f} %; "
        f"missed: true-class probability at {QUANTILES} {quantiles}; "
        f"pull (median) found {figures['pull_found']:.2e}, missed {figures['pull_missed']:.2e}; "
        f"event segments (mean) found {figures['length_found']:.1f}, "
        f"missed {figures['length_missed']:.1f}; dead classes {figures['dead_classes']} "
        f"({figures['dead_videos']} videos)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="videos per forward pass")
    args = parser.parse_args(argv)
    device = resolve_device(load_params(("train",), typed=True)["train"].device)
    model, _ = load_checkpoint(paths.checkpoint("wsel"), device)
    model.eval()
    print(f"model: {type(model).__name__}, wsel_loss of {type(model).wsel_loss.__qualname__}")
    for split in ("train", "test"):
        dataset = AVEDataset(paths.STORE, split, paths.pooled_features(model.needs_maps))
        probabilities, pulls = probabilities_and_pull(model, dataset, args.batch)
        print(report(split, fit_figures(probabilities, pulls, dataset.labels)))


if __name__ == "__main__":
    main()
