"""How CMRAN's attention moves to the audio during training: the shares of
``bench.cmran_audio_paths`` after every epoch, under the whole SEL loss or one of its terms.

``bench.cmran_audio_paths`` measures, on a trained CMRAN (``pipeline/models/cmran.py``), how
much weight each of its three attentions puts on the audio segments; a fresh
initialisation puts about half there. This bench follows the shares from the fresh model to
the last epoch. It runs the workspace's ``train_sel`` stage in this process (as
``bench.what_if`` does, with its ``--change`` if given), and around every training epoch
measures, in eval mode, the three shares on the test videos whose event spans every
segment (``bench.modality_swap.swap_videos``). It prints one row per epoch, epoch 0 being
the fresh model, with the epoch's mean training loss. The shares are measured on the
model as it is after the epoch, not on the checkpoint the stage keeps. (A run that resumes
from a ``.resume/`` state would label the resumed model epoch 0: start without one.)

**It overwrites the workspace's ``train_sel`` outputs without DVC recording them: run it in
a throwaway checkout** (``git worktree add``, then ``dvc checkout``).

Usage, in the checkout of an experiment whose model is CMRAN::

    python -m bench.cmran_attention_course [--change C]

with ``C`` one of ``bench.what_if``'s changes to CMRAN (``class-only``, ``relevance-only``,
``standardized-inputs``).
"""

import argparse
from collections.abc import Callable, Sequence
from unittest import mock

from bench import what_if
from bench.cmran_audio_paths import attention_on_audio
from bench.modality_swap import swap_videos
from pipeline.errors import PipelineError
from pipeline.models.cmran import CMRAN
from pipeline.training.loop import Trainer

RunEpoch = Callable[[Trainer, object, int], float]


def share_row(model: CMRAN, videos: dict) -> dict[str, float]:
    """The attention shares on the audio of ``model`` in eval mode over ``videos``
    (``audio`` and ``visual``); the model's train/eval mode is restored."""
    mode = model.training
    model.eval()
    try:
        return attention_on_audio(model, videos["audio"], videos["visual"])
    finally:
        model.train(mode)


def recorder(rows: list[dict], videos_of: Callable[[CMRAN], dict], original: RunEpoch) -> RunEpoch:
    """A ``Trainer.run_epoch`` that runs ``original`` and appends to ``rows`` the shares
    (:func:`share_row`) of the trainer's model: before its first epoch (epoch 0) and after
    every epoch, with the epoch's loss. ``videos_of(model)`` gives the videos, once.

    Raises:
        PipelineError: the trainer's model is not a CMRAN.
    """
    videos = {}

    def run_epoch(trainer: Trainer, loader, epoch: int) -> float:
        model = trainer.model
        if not isinstance(model, CMRAN):
            raise PipelineError(
                f"cmran_attention_course: expected a CMRAN model, found {type(model).__name__}"
            )
        if not videos:
            device = next(model.parameters()).device
            videos.update({key: value.to(device) for key, value in videos_of(model).items()})
            rows.append({"epoch": 0, "loss": float("nan"), **share_row(model, videos)})
        loss = original(trainer, loader, epoch)
        rows.append({"epoch": epoch, "loss": loss, **share_row(model, videos)})
        return loss

    return run_epoch


def table(rows: list[dict]) -> str:
    """``rows`` as a markdown table, shares in %."""
    names = [name for name in rows[0] if name not in ("epoch", "loss")]
    lines = ["| epoch | training loss | " + " | ".join(names) + " |"]
    lines.append("|---:|---:|" + "---:|" * len(names))
    for row in rows:
        shares = " | ".join(f"{100 * row[name]:.1f}" for name in names)
        lines.append(f"| {row['epoch']} | {row['loss']:.3f} | {shares} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--change", choices=what_if.CHANGES, default=None)
    parser.add_argument("--seed", type=int, default=0, help="seed of swap_videos' pairing")
    args = parser.parse_args(argv)
    rows: list[dict] = []
    videos_of = lambda model: swap_videos(model, args.seed)[0]  # noqa: E731
    run_epoch = recorder(rows, videos_of, Trainer.run_epoch)
    with what_if.changed(args.change), mock.patch.object(Trainer, "run_epoch", run_epoch):
        what_if.STAGES["train_sel"]()
    print(f"attention on the audio segments after each epoch ({args.change or 'the whole loss'}):")
    print(table(rows))


if __name__ == "__main__":
    main()
