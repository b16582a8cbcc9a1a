"""Where the AVVP Step-2 slice labels go wrong: a false positive's class, in the truth.

Seed 004's Step 2 on HAN (``avvp_refine``) labels each slice of a video per modality: which
classes are heard, which are seen (eqs 9-11). The stage scores the same estimate on the
validation videos (``metrics/avvp/refine.json``). This bench re-estimates it there with the
workspace's Step-1 model (``data/models/avvp_han.pt``), the stage's partners and settings,
at one or more thresholds ``tau``, and splits each modality's false positives (a class
labelled in a slice of a modality where the dense truth has it nowhere in that slice) by
where the truth does have that class:

- **other modality in the slice**: the class is in the slice in the other modality (seen
  where the label says heard, or heard where it says seen);
- **same modality elsewhere**: not in the other modality there, but in this modality
  elsewhere in the video (the label is misplaced in time);
- **neither**.

Usage, from a workspace root after ``dvc repro avvp_refine`` (or in an experiment's
checkout)::

    python -m bench.avvp_slice_errors [--tau 0.05 0.2]
"""

import argparse
from collections.abc import Sequence

import numpy as np
import torch

from pipeline.avvp.refine import (
    draw_partners,
    estimate_slice_labels,
    slice_quality,
    slice_truth,
)
from pipeline.avvp.train import load_data
from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.refinement.slices import slice_starts
from pipeline.training.checkpoint import load_checkpoint

SOURCES = ("other modality in the slice", "same modality elsewhere", "neither")
MODALITIES = ("audio", "visual")


def false_positive_sources(
    predicted: np.ndarray, truth: np.ndarray, present: np.ndarray
) -> dict[str, dict[str, float]]:
    """Each modality's false positives: their number and their shares by :data:`SOURCES`.

    Args:
        predicted: ``(n, T1, 2, C)`` estimated slice labels (audio, visual).
        truth: ``(n, T1, 2, C)`` true slice labels.
        present: ``(n, 2, C)``: the class occurs in the modality somewhere in the video.

    Returns:
        ``{modality: {"false positives": count, source: share, ...}}``; shares are ``nan``
        without false positives.
    """
    predicted, truth, present = (np.asarray(a, dtype=bool) for a in (predicted, truth, present))
    result = {}
    for m, name in enumerate(MODALITIES):
        false = predicted[:, :, m] & ~truth[:, :, m]  # (n, T1, C)
        other = false & truth[:, :, 1 - m]
        elsewhere = false & ~other & present[:, None, m]
        counts = (other.sum(), elsewhere.sum(), (false & ~other & ~elsewhere).sum())
        total = int(false.sum())
        shares = {
            s: c / total if total else float("nan") for s, c in zip(SOURCES, counts, strict=True)
        }
        result[name] = {"false positives": total, **shares}
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tau", type=float, nargs="*", help="thresholds (default: params')")
    args = parser.parse_args(argv)
    params = load_params(("avvp", "train"))
    config, seed = params["avvp"]["refine"], params["train"]["seed"]
    model, _ = load_checkpoint(paths.avvp_checkpoint("han"), torch.device("cpu"), "avvp")
    starts = slice_starts(10, config["window"], config["stride"])
    val = load_data(paths.LLP_STORE, "val")
    partners = draw_partners(val.weak.numpy(), seed)  # the stage's draw
    truth = slice_truth(val.dense, starts, config["window"])  # (n, T1, 2, C)
    present = np.asarray(val.dense).any(axis=-1)  # (n, 2, C)
    batch = params["avvp"]["evaluate"]["batch_size"]
    for tau in args.tau or [config["tau"]]:
        predicted = estimate_slice_labels(
            model, val.streams, val.weak, partners, starts, config["window"], tau, batch
        )
        quality = slice_quality(predicted, truth)
        print(f"tau {tau}: {len(val.names)} validation videos x {len(starts)} slices")
        for name, split in false_positive_sources(predicted, truth, present).items():
            print(
                f"  {name:<7} precision {quality[f'{name}_precision']:.2f} recall "
                f"{quality[f'{name}_recall']:.2f}; {split['false positives']} false positives: "
                + ", ".join(f"{s} {100 * split[s]:.0f} %" for s in SOURCES)
            )


if __name__ == "__main__":
    main()
