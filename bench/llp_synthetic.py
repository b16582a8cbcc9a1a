"""Real vs synthetic LLP annotations: does the generator reproduce the real statistics?

Plans a synthetic LLP dataset (:func:`pipeline.avvp.synthetic.plan_llp`, annotations only,
as many train and evaluated videos as the release) and prints each distribution of
:mod:`pipeline.avvp.statistics` beside the real one (committed in
``pipeline/avvp/llp_statistics.json``), as shares, with the total variation distance
(half the L1 distance of the two share vectors; 0 = identical, 1 = disjoint).

Usage, from the repository root::

    python -m bench.llp_synthetic [--seed 0]
"""

import argparse

import numpy as np

from pipeline.avvp.statistics import KINDS, measure_labels, reference_statistics
from pipeline.avvp.synthetic import plan_llp

N_TRAIN, N_EVALUATED = 10000, 1849  # the release's train and val + test videos


def _shares(counts: list[int]) -> np.ndarray:
    values = np.asarray(counts, dtype=np.float64)
    return values / values.sum()


def distributions(stats: dict) -> dict[str, np.ndarray]:
    """The compared distributions of one statistics dict, as shares."""
    co, gaps = stats["cooccurrence"], stats["annotation_gaps"]
    annotated = gaps["weak_labels"] - gaps["weak_without_dense"]  # weak labels with events
    return {
        "classes per video": _shares(stats["classes_per_video"]),
        "class prior": _shares(stats["class_counts"]),
        "modality (A-only, V-only, AV)": _shares([stats["modality"][k] for k in KINDS]),
        "audio events per label": _shares(stats["runs"]["audio"]),
        "visual events per label": _shares(stats["runs"]["visual"]),
        "audio event length (1..10)": _shares(stats["lengths"]["audio"]),
        "visual event length (1..10)": _shares(stats["lengths"]["visual"]),
        "AV labels co-occurring": _shares(  # (co-occurring, not)
            [co["cooccurring"], co["audio_visual"] - co["cooccurring"]]
        ),
        "weak labels (with, without dense event)": _shares([annotated, gaps["weak_without_dense"]]),
        "dense labels (with, without weak label)": _shares(
            [annotated, sum(gaps["dense_without_weak"].values())]
        ),
    }


def synthetic_statistics(seed: int) -> dict:
    """The statistics of a planned synthetic dataset of the release's size."""
    train = plan_llp(N_TRAIN, seed)
    evaluated = plan_llp(N_EVALUATED, seed, offset=N_TRAIN)
    return measure_labels(
        np.stack([v.weak for v in train]),
        np.stack([v.weak for v in evaluated]),
        np.stack([v.events for v in evaluated]),
    )


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Half the L1 distance between two share vectors."""
    return float(0.5 * np.abs(p - q).sum())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    real = distributions(reference_statistics())
    synthetic = distributions(synthetic_statistics(args.seed))
    for name, p in real.items():
        q = synthetic[name]
        print(f"{name}: TV = {total_variation(p, q):.3f}")
        print("  real      " + " ".join(f"{x:.3f}" for x in p))
        print("  synthetic " + " ".join(f"{x:.3f}" for x in q))


if __name__ == "__main__":
    main()
