"""Whether a SEL model trained with Link depends on its linked partner at test time.

Seed 001 §3.4 trains DPNet on linked graphs: each original video's graph is merged with its
replica's (eqs 17-21), so every node aggregates its relations from both videos. At test time
no video has a replica. This bench scores the workspace's SEL checkpoint
(``data/models/sel.pt``) on the test videos in two ways:

- **alone**, each video on its own graph, as the ``evaluate`` stage does;
- **linked**, each test video merged with one of ``--replicas`` replicas made of it by
  Algorithm 1 (:func:`pipeline.augment.replicas.make_replicas`) from the training videos'
  sub-event database (``data/db/subevents.npz``), one score per replica.

The replicas are built from the test videos' true labels, so the linked figures are an
oracle, never a result of the method: the partner brings same-class evidence. What the
bench compares is models: a model trained with Link meets its training regime when linked;
a model trained with Replicate alone meets a regime it never saw. If Link's cost came from
the missing partner at test time, the Link model would gain more from the partner than the
other does, or at least reach it once linked. Each line gives the accuracy and the error
shares of :func:`bench.error_split.split_errors` over the test segments.

Usage, from a workspace root after ``dvc repro evaluate@sel`` (or in an experiment's
checkout)::

    python -m bench.link_probe [--replicas 5] [--seed 0] [--batch 64]
"""

import argparse
from collections.abc import Sequence

import numpy as np
import torch

from bench.error_split import FIELDS as ERROR_FIELDS
from bench.error_split import split_errors
from pipeline.augment.database import load_database
from pipeline.augment.replicas import make_replicas
from pipeline.config import paths
from pipeline.data import store
from pipeline.data.composed import ComposedDataset, identity_sources
from pipeline.errors import PipelineError
from pipeline.models.graph import PairedBatch
from pipeline.training.checkpoint import load_checkpoint

FIELDS = ERROR_FIELDS[:4]  # the segment shares; "video class right" is per video


def linked_scores(model, originals: dict, partners: dict) -> torch.Tensor:
    """The originals' ``(B, T, C)`` segment scores when each is linked with its partner.

    Args:
        model: a SEL model whose backbone has a graph layer (``uses_graph``).
        originals: ``audio`` and ``visual`` of ``B`` videos.
        partners: the same for their partners, partner ``b`` linked with original ``b``.
    """
    if not model.uses_graph:
        raise PipelineError(f"link_probe: {type(model).__name__} has no graph layer to link")
    audio = torch.cat([originals["audio"], partners["audio"]])  # (2B, T, A)
    visual = torch.cat([originals["visual"], partners["visual"]])  # (2B, T, ...)
    batch = len(originals["audio"])
    with torch.no_grad():
        return model(audio, visual, PairedBatch(batch, 0))[:batch]  # (B, T, C)


def alone_scores(model, originals: dict) -> torch.Tensor:
    """The ``(B, T, C)`` segment scores of videos on their own graphs."""
    with torch.no_grad():
        return model(originals["audio"], originals["visual"])


def probe(model, originals, replicas, per_video: int, batch: int) -> dict[str, np.ndarray]:
    """Predicted classes ``(n, T)`` alone and linked with each replica ``r < per_video``.

    Args:
        model: the SEL model, in evaluation mode.
        originals: the ``n`` test videos (a :class:`ComposedDataset`).
        replicas: their replicas, video ``k``'s at ``k * per_video + r``.
        per_video: replicas per video.
        batch: videos per forward pass.
    """
    runs: dict[str, list] = {"alone": [], **{f"linked, replica {r}": [] for r in range(per_video)}}
    for begin in range(0, len(originals), batch):
        index = list(range(begin, min(begin + batch, len(originals))))
        items = originals.__getitems__(index)
        runs["alone"].append(alone_scores(model, items).argmax(-1))
        for r in range(per_video):
            partners = replicas.__getitems__([k * per_video + r for k in index])
            runs[f"linked, replica {r}"].append(linked_scores(model, items, partners).argmax(-1))
    return {name: torch.cat(parts).numpy() for name, parts in runs.items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=5, help="replicas per test video")
    parser.add_argument("--seed", type=int, default=0, help="seed of the replicas' draws")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    model, _ = load_checkpoint(paths.checkpoint("sel"), torch.device("cpu"))
    model.eval()
    rows = store.split_order(paths.STORE, "test")
    labels = store.segment_labels(paths.STORE)[rows]  # (n, T)
    pool = make_replicas(labels, rows, load_database(paths.SUBEVENTS), args.replicas, args.seed)
    pooled = paths.pooled_features(model.needs_maps)
    originals = ComposedDataset(paths.STORE, identity_sources(rows), labels, pooled)
    replicas = ComposedDataset(paths.STORE, pool.sources, pool.labels, pooled)
    print(f"{len(rows)} test videos; replica fallbacks: {pool.fallbacks}")
    print(f"{'run':<20}" + "".join(f"{field:>14}" for field in FIELDS) + "   (% of segments)")
    for name, predictions in probe(model, originals, replicas, args.replicas, args.batch).items():
        shares = split_errors(labels, predictions)
        print(f"{name:<20}" + "".join(f"{100 * shares[f]:>14.1f}" for f in FIELDS))


if __name__ == "__main__":
    main()
