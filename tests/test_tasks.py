"""The task descriptions (pipeline.tasks) against the code and the files they name."""

from pathlib import Path

import numpy as np
import yaml

from pipeline.avvp.metrics import avvp_metrics
from pipeline.config.schema import MODEL_TASKS, section_class
from pipeline.evaluation.metrics import segment_metrics
from pipeline.models import MODELS, TASK_MODELS
from pipeline.tasks import AVEL, AVVP, TASKS

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_each_task_is_a_model_task_with_its_registered_models():
    assert list(TASKS) == list(TASK_MODELS) == list(MODEL_TASKS)
    for name, task in TASKS.items():
        assert task.model is TASK_MODELS[name] and task.model.task == name
        assert {MODELS[m].task for m in MODELS.of_task(name)} == {name}
    assert "han" in MODELS.of_task("avvp") and "psp" in MODELS.of_task("avel")


def test_the_model_sections_are_the_schemas():
    assert AVEL.model_section == "model" and AVVP.model_section == "avvp.model"
    assert set(section_class("avvp").model_fields["model"].annotation.model_fields) >= {"name"}


def test_the_metrics_are_what_the_evaluation_computes():
    labels = np.array([[0, 28, 3], [28, 28, 1]])
    assert set(AVEL.metrics) <= set(segment_metrics(labels, labels))
    dense = np.zeros((2, 2, 25, 10), dtype=bool)
    dense[0, 0, 3, 2:5] = dense[1, 1, 4, :] = True
    assert set(AVVP.metrics) == set(avvp_metrics(dense, dense))
    assert AVEL.bootstrap is AVVP.bootstrap  # the shared bootstrap


def test_each_tasks_stages_depend_on_its_own_model_fingerprint():
    for task in TASKS.values():
        for stage in task.stages:
            deps = STAGES[stage].get("do", STAGES[stage])["deps"]
            assert str(task.model_code) in deps, stage
            other = next(t for t in TASKS.values() if t is not task)
            assert str(other.model_code) not in deps, stage
