"""Which modality a SEL model takes its class from: test videos with another video's sound.

Every test video whose event spans all 10 segments is given the audio of another such video
of a different class (a fixed random pairing), keeping its own visual features, and the
workspace's checkpoint of the task (``data/models/sel.pt`` by default; ``--task wsel`` for
the weakly supervised model) scores the mixed video. Over its
segments, the bench counts the predictions of:

- **the sound's class**: the class of the video the audio came from;
- **the look's class**: the video's own class;
- **another class**, or **background**.

A model that weighs both modalities splits between the first two; one that follows a single
modality gives that modality's class. The unmixed videos' accuracy is printed beside it
(as a check that the checkpoint and the data agree).

Usage, from a workspace root after ``dvc repro evaluate@sel`` (or ``evaluate@wsel``; or in
an experiment's checkout)::

    python -m bench.modality_swap [--task sel|wsel] [--seed 0] [--batch 64] [--change C]

``--change`` scores under one of ``bench.what_if``'s changes: the one the checkpoint was
trained with, when it changes how the model reads its inputs (``standardized-inputs``).
"""

import argparse
from collections.abc import Sequence

import numpy as np
import torch

from bench import what_if
from pipeline.config import paths
from pipeline.data import store
from pipeline.data.dataset import AVEDataset
from pipeline.errors import PipelineError
from pipeline.training import loop
from pipeline.training.checkpoint import load_checkpoint

TASKS = ("sel", "wsel")
OUTCOMES = ("sound's class", "look's class", "another class", "background")


def swap_partners(classes: np.ndarray, seed: int) -> np.ndarray:
    """For each video, another video of a different class, drawn uniformly.

    Args:
        classes: ``(n,)`` the videos' classes.
        seed: seed of the draw.

    Returns:
        ``(n,)`` partner indices.

    Raises:
        PipelineError: fewer than two classes among the videos.
    """
    if len(set(classes.tolist())) < 2:
        raise PipelineError("modality_swap: expected videos of at least two classes")
    rng = np.random.default_rng(seed)
    return np.array([rng.choice(np.flatnonzero(classes != c)) for c in classes])


def outcome_shares(
    predictions: np.ndarray, own: np.ndarray, sound: np.ndarray, background: int
) -> dict[str, float]:
    """Shares of :data:`OUTCOMES` among the ``(n, T)`` predictions of the mixed videos.

    Args:
        predictions: ``(n, T)`` predicted classes.
        own: ``(n,)`` each video's own (visual) class.
        sound: ``(n,)`` the class of the video its audio came from.
        background: the background class.
    """
    own, sound = own[:, None], sound[:, None]  # (n, 1) each
    counts = (
        predictions == sound,
        predictions == own,
        (predictions != sound) & (predictions != own) & (predictions != background),
        predictions == background,
    )
    return {name: float(c.mean()) for name, c in zip(OUTCOMES, counts, strict=True)}


def predict(model, audio: torch.Tensor, visual: torch.Tensor, batch: int) -> np.ndarray:
    """``(n, T)`` predicted classes of the videos ``(audio, visual)``, ``batch`` at a time
    (:func:`pipeline.training.loop.predict`, as the ``evaluate`` stage scores)."""
    batches = [
        {"audio": audio[i : i + batch], "visual": visual[i : i + batch]}
        for i in range(0, len(audio), batch)
    ]
    return loop.predict(model, batches, torch.device("cpu")).argmax(-1)  # (n, T)


def swap_videos(model, seed: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """The workspace's test videos whose event spans every segment (``items``: their
    ``audio`` and ``visual`` features, in ``model``'s input layout), their classes ``(n,)``
    and each one's partner of another class (:func:`swap_partners` drawn with ``seed``)."""
    dataset = AVEDataset(paths.STORE, "test", paths.pooled_features(model.needs_maps))
    full = np.flatnonzero((dataset.labels != store.BACKGROUND).all(axis=1))  # whole-video events
    classes = dataset.labels[full, 0]  # (n,)
    return dataset.__getitems__(full.tolist()), classes, swap_partners(classes, seed)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=TASKS, default="sel", help="whose checkpoint")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pairing")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--change", choices=what_if.CHANGES, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    model, _ = load_checkpoint(paths.checkpoint(args.task), torch.device("cpu"))  # eval mode
    items, classes, partners = swap_videos(model, args.seed)
    with what_if.changed(args.change):
        own = predict(model, items["audio"], items["visual"], args.batch)
        mixed = predict(model, items["audio"][partners], items["visual"], args.batch)
    print(f"{len(classes)} test videos with a whole-video event; unmixed accuracy "
          f"{100 * (own == classes[:, None]).mean():.1f} %")  # fmt: skip
    shares = outcome_shares(mixed, classes, classes[partners], store.BACKGROUND)
    print(
        "with another video's sound: "
        + ", ".join(f"{k} {100 * v:.1f} %" for k, v in shares.items())
    )


if __name__ == "__main__":
    main()
