"""The pipeline's two tasks, each described once: its labels, data, metrics and refinement.

AVEL (audio-visual event localization, AVE) and AVVP (audio-visual video parsing, LLP,
seed 004 App. A.1) are two tasks of one pipeline. They share the model registry and its
contract (:mod:`pipeline.models`: a model declares the task it serves), the training
loop (:mod:`pipeline.training.loop`), the bootstrap of their metrics
(:func:`pipeline.evaluation.stats.scorer_ci`) and the stage helpers; a :class:`Task` holds
what differs. ``tests/test_tasks.py`` checks each description against the code it names.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.avvp import refine as avvp_refine
from pipeline.avvp.metrics import METRICS as AVVP_METRICS
from pipeline.config import paths
from pipeline.config.model_index import MODEL_CODE_FILES
from pipeline.evaluation.stats import HEADLINE, scorer_ci
from pipeline.models import AVELModel, AVVPModel, Model
from pipeline.refinement import labels as avel_refine


@dataclass(frozen=True)
class Task:
    """One task: what its models, data, metrics and refinement are.

    Args:
        name: ``avel`` or ``avvp``, the :attr:`~pipeline.models.base.Model.task` of its
            models.
        labels: what its labels are, in words.
        model: its models' base class, the data contract of a model: the inputs and
            outputs of ``forward`` and the data-derived constructor sizes
            (:attr:`~pipeline.models.base.Model.data_dims`); its model section in
            ``params.yaml`` is ``model.section``.
        store: where the download stage puts its data.
        model_code: the fingerprint of its chosen model's code (a ``model_code`` stage).
        metrics: the metrics its evaluate stage reports, each with a 95 % CI.
        bootstrap: how those CIs are drawn from a run's per-video scores: the shared
            percentile bootstrap over test videos.
        refinement: seed 004's Step 2 on the task: the function estimating slice labels.
        stages: its train, refine, retrain and evaluate stages in ``dvc.yaml``.
    """

    name: str
    labels: str
    model: type[Model]
    store: Path
    model_code: Path
    metrics: tuple[str, ...]
    bootstrap: Callable
    refinement: Callable
    stages: tuple[str, ...]

    @property
    def model_section(self) -> str:
        """Its model section in ``params.yaml``: ``model`` or ``avvp.model``."""
        return self.model.section


AVEL = Task(
    name="avel",
    labels="one class per segment, 28 events or background (AVE): segment labels for "
    "SEL, the video's event for WSEL",
    model=AVELModel,
    store=paths.STORE,
    model_code=MODEL_CODE_FILES["avel"],
    metrics=HEADLINE,
    bootstrap=scorer_ci,
    refinement=avel_refine.estimate_slice_labels,
    stages=("train_sel", "train_wsel", "refine", "retrain_wsel", "evaluate"),
)

AVVP = Task(
    name="avvp",
    labels="multi-label and per modality (LLP): weak video labels of 25 events for "
    "training, dense audio and visual events for validation and test",
    model=AVVPModel,
    store=paths.LLP_STORE,
    model_code=MODEL_CODE_FILES["avvp"],
    metrics=tuple(AVVP_METRICS),
    bootstrap=scorer_ci,
    refinement=avvp_refine.estimate_slice_labels,
    stages=("avvp_train", "avvp_refine", "avvp_retrain", "avvp_evaluate"),
)

TASKS: dict[str, Task] = {task.name: task for task in (AVEL, AVVP)}
"""The tasks by name."""
