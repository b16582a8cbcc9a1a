"""Rerun stages of a workspace with one change made in-process, to test a table's reason.

Some reasons a table gives (``docs/tables.md``) are tested by changing one thing in a
method, not a hyperparameter: which loss fits the video labels, whether the attention reads
the map. This bench runs the named stages' ``main`` in one process with the change patched
in, on the workspace's ``params.yaml`` and data, and writes their usual outputs.
**It overwrites the workspace's outputs without DVC recording them: run it in a throwaway
checkout** (``git worktree add``, then ``dvc checkout``), never in the workspace you commit.

Changes (``--change``):

- ``log-likelihood``: the model's ``wsel_loss`` becomes the binary cross-entropy (the
  log-likelihood) of its own video prediction of seed 004 eq 6,
  :math:`-\\frac{1}{C}\\sum_c [Y_c \\log \\hat{Y}_c + (1 - Y_c) \\log(1 - \\hat{Y}_c)]`,
  instead of the multi-label soft margin of the same probabilities
  (:func:`pipeline.losses.mil_loss`); for the models whose ``wsel_loss`` is that loss (AVE,
  CMRAN). Step 1, the auxiliary objective and Step 3 all use it.
- ``mean-regions``: PSP's audio-guided attention returns the mean of the map's regions
  (what DPNet reads) instead of their attention-weighted sum.
- ``class-only`` and ``relevance-only``: CMRAN's SEL loss
  :math:`\\mathrm{BCE}(e_t, [y_t \\ne bg]) + \\mathrm{CE}(k, c_{video})`
  (:meth:`pipeline.models.cmran.CMRAN.feature_loss`) keeps only its video-class term or
  only its per-segment event-relevance term. The term left out trains nothing, so the
  scores of its head mean nothing; the change is for what the kept term alone teaches the
  shared layers (where ``bench.cmran_audio_paths`` says the attention looks).
- ``standardized-inputs``: CMRAN is given its audio and visual features standardized, each
  feature (each channel of the maps) to mean 0 and standard deviation 1 over the
  workspace's training split, in training and in evaluation. CMRAN reads its inputs raw
  (no input normalisation, official code); this removes the offset and scale the features
  share across videos. The statistics are computed once, from the training split's maps
  held in memory with a float64 copy (about 2 GB at 560 videos, 10 at AVE's 3339).

Usage, in an experiment's checkout::

    python -m bench.what_if --change log-likelihood --stages train_wsel evaluate@wsel
"""

import argparse
import contextlib
from collections.abc import Callable, Iterator, Sequence
from unittest import mock

import torch
import torch.nn.functional as F

from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.data.dataset import AVEDataset
from pipeline.losses import video_prediction
from pipeline.models.ave import AVEBaseline
from pipeline.models.cmran import CMRAN, video_event_class
from pipeline.models.psp import AudioGuidedAttention
from stages import evaluate, refine, retrain, train

EPS = 1e-8
CHANGES = (
    "log-likelihood",
    "mean-regions",
    "class-only",
    "relevance-only",
    "standardized-inputs",
)


def log_likelihood_loss(scores: torch.Tensor, video_labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of eq 6's ``(B, C)`` video probabilities and the video labels.

    Args:
        scores: ``(B, T, C)`` raw segment scores.
        video_labels: ``(B, C)`` presence labels in {0, 1}.
    """
    probabilities = video_prediction(scores).clamp(EPS, 1 - EPS)  # (B, C)
    likelihood = video_labels * probabilities.log() + (1 - video_labels) * (-probabilities).log1p()
    return -likelihood.mean()


def cmran_loss_terms(self, features: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """The two terms of :meth:`CMRAN.feature_loss`, by name (``class`` and ``relevance``)."""
    relevance, class_logits = features[..., 0], features[:, 0, 1:]  # (B, T), (B, C)
    is_event = (labels != self.background).to(relevance.dtype)  # (B, T)
    event = video_event_class(labels, self.background)  # (B,)
    return {
        "relevance": F.binary_cross_entropy_with_logits(relevance, is_event),
        "class": F.cross_entropy(class_logits, event),
    }


def only(term: str) -> Callable[..., torch.Tensor]:
    """A :meth:`CMRAN.feature_loss` that keeps one of :func:`cmran_loss_terms`."""
    return lambda self, features, labels: cmran_loss_terms(self, features, labels)[term]


def feature_statistics(videos: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, ...]]:
    """Per-feature ``(mean, std)`` of each modality of ``videos`` (``audio`` ``(n, T, d_a)``,
    ``visual`` ``(n, T, ..., d_v)``), over every axis but the last."""
    statistics = {}
    for name in ("audio", "visual"):
        flat = videos[name].reshape(-1, videos[name].shape[-1]).double()  # (N, d)
        statistics[name] = (flat.mean(dim=0).float(), flat.std(dim=0).clamp_min(EPS).float())
    return statistics


def standardizing(forward: Callable, statistics_of: Callable[[], dict]) -> Callable:
    """``forward`` given each input standardized by ``statistics_of()`` (fetched once)."""
    cache = {}

    def standardized_forward(self, audio, visual, *args, **kwargs):
        if not cache:
            cache.update(statistics_of())
        (a_mean, a_std), (v_mean, v_std) = (cache[k] for k in ("audio", "visual"))
        audio = (audio - a_mean.to(audio.device)) / a_std.to(audio.device)  # (B, T, d_a)
        visual = (visual - v_mean.to(visual.device)) / v_std.to(visual.device)  # (B, T, ..., d_v)
        return forward(self, audio, visual, *args, **kwargs)

    return standardized_forward


def training_split_statistics() -> dict[str, tuple[torch.Tensor, ...]]:
    """:func:`feature_statistics` of the workspace store's training split (maps)."""
    train = AVEDataset(paths.STORE, "train")
    return feature_statistics(train.__getitems__(list(range(len(train)))))


def mean_regions(self, audio: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """The ``(B, T, C)`` mean of ``(B, T, R, C)`` regions: no attention."""
    return regions.mean(dim=-2)


@contextlib.contextmanager
def changed(change: str | None) -> Iterator[None]:
    """The ``--change`` patched in for the duration of the block (``None``: no change)."""
    if change is None:
        yield
    elif change == "log-likelihood":
        loss = staticmethod(log_likelihood_loss)
        with (
            mock.patch.object(AVEBaseline, "wsel_loss", loss),
            mock.patch.object(CMRAN, "wsel_loss", loss),
        ):
            yield
    elif change == "mean-regions":
        with mock.patch.object(AudioGuidedAttention, "forward", mean_regions):
            yield
    elif change == "standardized-inputs":
        forward = standardizing(CMRAN.forward, training_split_statistics)
        with mock.patch.object(CMRAN, "forward", forward):
            yield
    elif change in ("class-only", "relevance-only"):
        with mock.patch.object(CMRAN, "feature_loss", only(change.removesuffix("-only"))):
            yield
    else:
        raise SystemExit(f"what_if: --change: expected one of {CHANGES}, found {change!r}")


def _evaluate(task: str) -> Callable[[], None]:
    return lambda: evaluate.main(load_params(("evaluate",)), task)


def _train(task: str) -> Callable[[], None]:
    return lambda: train.main(load_params(train.SECTIONS[task], typed=True), task)


STAGES: dict[str, Callable[[], None]] = {
    "train_sel": _train("sel"),
    "train_wsel": _train("wsel"),
    "refine": lambda: refine.main(load_params(refine.SECTIONS, typed=True)),
    "retrain_wsel": lambda: retrain.main(load_params(retrain.SECTIONS, typed=True)),
    **{f"evaluate@{task}": _evaluate(task) for task in ("sel", "wsel", "wsel_refined")},
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--change", choices=CHANGES, required=True)
    parser.add_argument("--stages", nargs="+", choices=list(STAGES), required=True)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with changed(args.change):
        for stage in args.stages:
            print(f"what_if: {stage} with {args.change}", flush=True)
            STAGES[stage]()


if __name__ == "__main__":
    main()
