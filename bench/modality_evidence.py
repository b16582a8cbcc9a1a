"""How much of a video's class each modality carries: linear probes that no model owns.

CMRAN's relation attention reads the sound on the synthetic store (``docs/tables.md``,
seed 001 Table 1 SEL). This bench asks whether the store simply gives the sound more
evidence of the video's class than the look. For each modality, a logistic regression
(scikit-learn, on features standardised with the training split's statistics, as
:func:`bench.calibration.probe_accuracy`) is fitted on the training split and scored on
the test split, predicting:

- **video, 10 segments**: the video's class from its features averaged over all 10
  segments (what a video-level class head sees);
- **video, event segments**: the same, averaged over the video's event segments only;
- **event segment**: each event segment's class from that segment's features.

The modalities: the audio, the 7x7-averaged visual map, and the map averaged under the
sound source's footprint (:func:`bench.calibration.source_features`, an oracle attention).

Usage, from the repository root::

    python -m bench.modality_evidence [--set audio_strength=1.8 ...]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.calibration import generator_settings, modality_features, parse_set, probe_accuracy
from pipeline.data import store
from pipeline.data.synthetic import SyntheticPlan, generate_synthetic

PROBES = ("video, 10 segments", "video, event segments", "event segment")


def event_mean(features: np.ndarray, event: np.ndarray) -> np.ndarray:
    """``(n, D)`` mean of each video's features over its event segments (zeros for none).

    Args:
        features: ``(n, T, D)`` per-segment features.
        event: ``(n, T)`` bool, the event segments.
    """
    weights = event[..., None].astype(features.dtype)  # (n, T, 1)
    counts = weights.sum(axis=1).clip(min=1)  # (n, 1)
    return (features * weights).sum(axis=1) / counts  # (n, D)


def class_probes(
    features: np.ndarray,
    labels: np.ndarray,
    classes: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
) -> dict[str, float]:
    """Test accuracy of each probe of :data:`PROBES` on one modality's features.

    Args:
        features: ``(n, T, D)`` features of every store row.
        labels: ``(n, T)`` segment classes (:data:`pipeline.data.store.BACKGROUND` for none).
        classes: ``(n,)`` each video's class.
        train: store rows to fit on.
        test: store rows to score.
    """
    event = labels != store.BACKGROUND  # (n, T)
    segment_rows = np.broadcast_to(np.arange(len(features))[:, None], event.shape)[event]
    per_segment = features[event][:, None, :]  # (s, 1, D): one "video" per event segment
    return {
        "video, 10 segments": probe_accuracy(
            features.mean(axis=1, keepdims=True), classes[:, None], train, test
        ),
        "video, event segments": probe_accuracy(
            event_mean(features, event)[:, None, :], classes[:, None], train, test
        ),
        "event segment": probe_accuracy(
            per_segment,
            labels[event][:, None],
            np.flatnonzero(np.isin(segment_rows, train)),
            np.flatnonzero(np.isin(segment_rows, test)),
        ),
    }


def evidence_table(root: Path, plan: SyntheticPlan, source_sigma: float) -> dict:
    """Modality -> probe -> test accuracy (%) on the store at ``root``."""
    labels = store.segment_labels(root)
    classes = np.array([video.cls for video in plan.videos])
    train, test = store.split_order(root, "train"), store.split_order(root, "test")
    return {
        name: {
            probe: 100 * accuracy
            for probe, accuracy in class_probes(features, labels, classes, train, test).items()
        }
        for name, features in modality_features(root, plan, source_sigma).items()
    }


def format_table(table: dict) -> str:
    """The table as Markdown, one row per modality."""
    lines = ["| modality | " + " | ".join(PROBES) + " |", "|---" + "|---:" * len(PROBES) + "|"]
    for name, row in table.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[p]:.1f}" for p in PROBES) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", nargs="*", default=[], help="generate_synthetic key=value")
    args = parser.parse_args()
    overrides = parse_set(args.set)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ave"
        start = time.perf_counter()
        plan = generate_synthetic(root, **overrides)
        sigma = generator_settings(overrides)["source_sigma"]
        print(f"store generated in {time.perf_counter() - start:.0f} s, overrides {overrides}")
        print(format_table(evidence_table(root, plan, sigma)))


if __name__ == "__main__":
    main()
