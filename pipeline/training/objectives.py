"""Training objectives: what one mini-batch costs, for each way of training a model.

An objective is a callable ``objective(model, batch, epoch, device) -> loss`` used by
:func:`pipeline.training.loop.fit`; ``batch`` is a dict of a dataset of :mod:`pipeline.data`
(``audio``, ``visual``, ``labels``, ``index``) and ``epoch`` is 1-based.

* SEL: :class:`Supervised` (cross-entropy, plus the model's feature loss, e.g. EDRNet's
  Land-Shore-Sea loss) and :class:`WithReplicas` (seed 001 §3.4: one replica per original
  in each mini-batch, linked graphs for graph models).
* WSEL (seed 004): :func:`weak_loss` (the model's MIL loss), :class:`WithAuxiliary`
  (eqs 15-18 added in Step 1), :class:`WithSliceLabels` (eqs 12-13 added in Step 3) and
  :class:`Supervised` on pseudo-labels (the +PL baseline).

Objectives that hold data of their own (label tables, the replica pool, the partner
videos) have ``nbytes`` and ``to(device)``, so that :func:`pipeline.training.loop.place` keeps it
on the training device; :class:`WithAuxiliary`'s random partner draws have a
``state_dict`` for resuming (:mod:`pipeline.training.resume`).
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from pipeline.data.store import BACKGROUND, N_CLASSES
from pipeline.errors import PipelineError
from pipeline.losses import (
    auxiliary_loss,
    label_refinement_loss,
    sel_loss,
    union_labels,
    video_labels_from_segments,
)
from pipeline.models.base import AVELModel
from pipeline.models.graph import PairedBatch
from pipeline.refinement.slices import synthetic_videos


def scores_and_feature_loss(
    model: AVELModel,
    audio: torch.Tensor,
    visual: torch.Tensor,
    labels: torch.Tensor,
    graph: PairedBatch | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Raw scores ``(B, T, C)`` and, for a model with a feature loss, that loss.

    Args:
        model: the model.
        audio: ``(B, T, A)`` audio features on the model's device.
        visual: ``(B, T, ...)`` visual features on the model's device.
        labels: ``(B, T)`` segment classes (the feature loss needs them).
        graph: the linked layout of originals and replicas for a graph model (default
            ``None``: each video's own graph).
    """
    kwargs = {} if graph is None else {"graph": graph}
    if not model.has_feature_loss:
        return model(audio, visual, **kwargs), None
    scores, features = model(audio, visual, return_features=True, **kwargs)  # (B, T, C/D)
    return scores, model.feature_loss(features, labels)


def segment_loss(model: AVELModel, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    r"""The SEL cross-entropy, weighted by the model's ``seg_weight``.

    EDRNet's :math:`\lambda_1` (seed 002); other models weigh it 1 (the default).
    """
    return model.seg_weight * sel_loss(scores, labels)


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Audio, visual and labels of a batch on ``device`` (no copy when they live there)."""
    return tuple(batch[k].to(device, non_blocking=True) for k in ("audio", "visual", "labels"))


def _nbytes(tensor: torch.Tensor | None) -> int:
    return 0 if tensor is None else tensor.numel() * tensor.element_size()


@dataclass
class Supervised:
    r"""SEL: mean segment cross-entropy on ``labels`` plus the model's feature loss.

    The cross-entropy is weighted by the model's ``seg_weight`` and the feature loss by
    the model itself (EDRNet: :math:`\lambda_1 \mathcal{L}_{seg} + \lambda_2
    \mathcal{L}_{lss}`, seed 002).

    Args:
        labels: ``(n, T)`` segment classes to train on, by dataset index, instead of the
            batch's own labels (the +PL baseline's pseudo-labels); ``None`` (default) uses
            the batch's labels.
    """

    labels: np.ndarray | None = None
    table: torch.Tensor | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.table = None if self.labels is None else torch.from_numpy(self.labels)  # (n, T)

    @property
    def nbytes(self) -> int:
        """Bytes of the label table that :meth:`to` moves."""
        return _nbytes(self.table)

    def to(self, device: torch.device) -> None:
        """Keep the label table on ``device`` (no copy per batch)."""
        self.table = None if self.table is None else self.table.to(device)

    def __call__(self, model, batch, epoch: int, device: torch.device) -> torch.Tensor:
        audio, visual, labels = _to(batch, device)
        if self.table is not None:
            labels = self.table[batch["index"].to(self.table.device)].to(device)  # (B, T)
        scores, extra = scores_and_feature_loss(model, audio, visual, labels)
        loss = segment_loss(model, scores, labels)
        return loss if extra is None else loss + extra


@dataclass
class WithReplicas:
    """SEL with Replicate (and Link) of seed 001 §3.4.

    "we dynamically generate and link one replica for each video in the mini-batch": each
    original of the batch (dataset index ``< n_originals``) brings its replica number
    ``(epoch - 1) mod per_video`` from the precomputed pool, where original ``k``'s replicas
    sit at ``k * per_video + r`` (so every epoch sees a different replica until the pool
    cycles). The batch is laid out as originals, replicas, then the videos without a
    replica (SMB-fused ones); with ``link`` and a model whose backbone has a graph layer the
    graph of each original and its replica are merged (eqs 17-21: the model gets the
    layout :class:`~pipeline.models.graph.PairedBatch` of
    :func:`~pipeline.models.graph.replica_batch_graph`), otherwise every video keeps its
    own graph. The loss is the cross-entropy over all segments of the enlarged batch.

    Args:
        replicas: the replica pool (a dataset of composed videos).
        per_video: replicas per original in the pool.
        n_originals: dataset indices below this are originals.
        link: merge the graphs of originals and replicas.
    """

    replicas: object
    per_video: int
    n_originals: int
    link: bool

    @property
    def nbytes(self) -> int:
        """Bytes of the replica pool's in-memory data."""
        return self.replicas.nbytes

    def to(self, device: torch.device) -> None:
        """Keep the replica pool's in-memory data on ``device``."""
        self.replicas.to(device)

    def __call__(self, model, batch, epoch: int, device: torch.device) -> torch.Tensor:
        index = batch["index"].numpy()
        originals = index < self.n_originals  # (B,)
        pool = index[originals] * self.per_video + (epoch - 1) % self.per_video
        replica = self.replicas.__getitems__(pool.tolist())
        keep = torch.from_numpy(originals)  # (B,)
        parts = [
            {k: batch[k][keep.to(batch[k].device)] for k in ("audio", "visual", "labels")},
            replica,
            {k: batch[k][~keep.to(batch[k].device)] for k in ("audio", "visual", "labels")},
        ]
        joined = {k: torch.cat([p[k] for p in parts]) for k in ("audio", "visual", "labels")}
        audio, visual, labels = _to(joined, device)
        graph = None
        if self.link and model.uses_graph:
            pairs, singles = int(originals.sum()), int((~originals).sum())
            graph = PairedBatch(pairs, singles)
        scores, extra = scores_and_feature_loss(model, audio, visual, labels, graph)
        loss = segment_loss(model, scores, labels)
        return loss if extra is None else loss + extra


def weak_labels(labels: torch.Tensor) -> torch.Tensor:
    """Video-level presence labels ``(B, C)`` of segment labels (seed 004 §3)."""
    return video_labels_from_segments(labels, N_CLASSES, BACKGROUND)


def weak_loss(model, batch, epoch: int, device: torch.device) -> torch.Tensor:
    """WSEL: the model's MIL loss on the video labels only (seed 004 §4.1, Step 1)."""
    audio, visual, labels = _to(batch, device)
    return model.wsel_loss(model(audio, visual), weak_labels(labels))


@dataclass
class WithAuxiliary:
    r"""Step 1 of seed 004 with the auxiliary objective: :math:`L_{MIL} + L_A` (§4.3).

    Each video :math:`V^{(i)}` of the batch is paired with a background-only video
    :math:`V^{(j)}` drawn at random from ``dataset`` (indices ``background``), so
    :math:`L^{(i)} \cap L^{(j)} = \emptyset` ("we conveniently sample the second video from
    these", §5). Its :math:`T_1` synthetic videos of eq 9 go through the model, and
    :func:`pipeline.losses.auxiliary_loss` pools their scores within and across them
    (eqs 15-16) and fits them to :math:`L^{(i)} \cup L^{(j)}` (eqs 17-18) with the model's
    own weak loss :math:`g`. Background-only videos of the batch are paired too (their
    label set is empty, so the pair is disjoint).

    Args:
        dataset: a dataset holding the background-only videos (drawn as partners).
        background: ``(m,)`` dataset indices of the background-only videos.
        starts: 0-based slice starts :math:`t_1`.
        window: slice length :math:`N`.
        seed: seed of the partner draws.
    """

    dataset: object
    background: np.ndarray
    starts: list[int]
    window: int
    seed: int = 0
    rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.background) == 0:
            raise PipelineError(
                "refine.auxiliary: the auxiliary objective pairs each video with a "
                "background-only video, but the training set has none (the store needs "
                "labels_noisy.h5 and train.background_videos must be true)"
            )
        self.rng = np.random.default_rng(self.seed)

    @property
    def nbytes(self) -> int:
        """Bytes of the partner dataset's in-memory data."""
        return self.dataset.nbytes

    def to(self, device: torch.device) -> None:
        """Keep the partner dataset's in-memory data on ``device``."""
        self.dataset.to(device)

    def state_dict(self) -> dict:
        """The state of the partner draws, for resuming (:mod:`pipeline.training.resume`)."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        """Continue the partner draws from a :meth:`state_dict`."""
        self.rng.bit_generator.state = state["rng"]

    def __call__(self, model, batch, epoch: int, device: torch.device) -> torch.Tensor:
        audio, visual, labels = _to(batch, device)
        first = weak_labels(labels)  # (B, C)
        loss = model.wsel_loss(model(audio, visual), first)
        partners = self.rng.choice(self.background, size=len(labels))
        second = self.dataset.__getitems__(partners.tolist())
        synthetic = [
            synthetic_videos(x, y.to(device), self.starts, self.window).flatten(0, 1)
            for x, y in ((audio, second["audio"]), (visual, second["visual"]))
        ]  # (B * T1, T, ...) each
        scores = model(*synthetic).unflatten(0, (len(labels), len(self.starts)))  # (B, T1, T, C)
        union = union_labels(first, weak_labels(second["labels"].to(device)))  # (B, C)
        return loss + auxiliary_loss(scores, union, model.wsel_loss)


@dataclass
class WithSliceLabels:
    r"""Step 3 of seed 004: :math:`L_{MIL} + L_{LR}` with slice pseudo-labels (eqs 12-13).

    "We re-train from scratch imposing this additional refinement loss": the MIL loss on the
    video label plus the mean over slices of the weak loss on each slice's scores
    (:func:`pipeline.losses.label_refinement_loss`).

    Args:
        slice_labels: ``(n, T1, C)`` float slice label vectors by dataset index.
        starts: 0-based slice starts :math:`t_1`.
        window: slice length :math:`N`.
    """

    slice_labels: np.ndarray
    starts: list[int]
    window: int
    table: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.table = torch.from_numpy(np.asarray(self.slice_labels))  # (n, T1, C)

    @property
    def nbytes(self) -> int:
        """Bytes of the slice label table that :meth:`to` moves."""
        return _nbytes(self.table)

    def to(self, device: torch.device) -> None:
        """Keep the slice label table on ``device`` (no copy per batch)."""
        self.table = self.table.to(device)

    def __call__(self, model, batch, epoch: int, device: torch.device) -> torch.Tensor:
        audio, visual, labels = _to(batch, device)
        scores = model(audio, visual)  # (B, T, C)
        targets = self.table[batch["index"].to(self.table.device)].to(device)  # (B, T1, C)
        refinement = label_refinement_loss(
            scores, targets, self.starts, self.window, model.wsel_loss
        )
        return model.wsel_loss(scores, weak_labels(labels)) + refinement
