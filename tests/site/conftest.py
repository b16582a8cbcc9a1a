"""A tiny project for the site: committed outputs of two tasks and a table's experiments.

The files are the ones the pipeline commits (predictions, metrics, details, dvclive TSVs,
``params.yaml``), fabricated small, in a temporary git repository; the experiments are
commits under ``refs/exps/<HEAD>/`` named as :func:`pipeline.experiments.ablations.plan` names
them, as
``dvc exp run`` or ``dvc exp pull`` leave them. The site builder reads them for real.
"""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.evaluation.scoring import score_predictions, top_probabilities
from pipeline.experiments.ablations import apply_overrides, load_ablations, plan
from tests.experiments.test_tables import TINY_TABLE

ROOT = Path(__file__).resolve().parents[2]
N_VIDEOS, T = 12, 10
SEEDS = [0, 1]
NAMES = [f"event {i}" for i in range(28)] + ["background"]

_TINY = TINY_TABLE["tables"][0]
TABLE = {"tables": [{**_TINY, "rows": _TINY["rows"][:2]}]}  # the runnable rows of tiny


def git(root: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, cwd=root, check=True, capture_output=True, text=True).stdout


def labels_of(rng: np.random.Generator) -> np.ndarray:
    """``(n, T)``: one event class per video over a random span, background elsewhere."""
    labels = np.full((N_VIDEOS, T), 28)
    for video in range(N_VIDEOS):
        start, length = rng.integers(0, 5), rng.integers(3, 6)
        labels[video, start : start + length] = rng.integers(0, 4)
    return labels


def corrupt(labels: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """The labels with ``share`` of the segments replaced by a random class."""
    predictions = labels.copy()
    flip = rng.random(labels.shape) < share
    predictions[flip] = rng.integers(0, 29, size=int(flip.sum()))
    return predictions


def write_task(root: Path, task: str, labels, predictions, names=None, curves=True) -> None:
    """The evaluate stage's committed files of one task (and its dvclive log)."""
    rng = np.random.default_rng(len(task))
    scores = rng.normal(size=(*labels.shape, 29))  # (n, T, C)
    np.put_along_axis(scores, predictions[..., None], 10.0, axis=-1)  # argmax = prediction
    saved = {"rows": list(range(100, 100 + len(labels))), "labels": labels, "model": predictions}
    saved.update(top_probabilities(scores))
    (root / "reports" / "predictions").mkdir(parents=True, exist_ok=True)
    (root / "metrics" / "evaluate").mkdir(parents=True, exist_ok=True)
    lists = {key: np.asarray(value).tolist() for key, value in saved.items()}
    (root / "reports" / "predictions" / f"{task}.json").write_text(json.dumps(lists))
    metrics = score_predictions({"model": predictions}, labels, resamples=200)
    (root / "metrics" / "evaluate" / f"{task}.json").write_text(json.dumps(metrics))
    details = {"class_names": names} if names else {}
    (root / "reports" / f"{task}_details.json").write_text(json.dumps(details))
    if curves:
        log = root / "metrics" / "train_log" / task / "plots" / "metrics"
        log.mkdir(parents=True, exist_ok=True)
        for curve, values in {
            "train_loss": [2.0, 1.0, 0.5],
            "val_accuracy": [0.3, 0.5, 0.6],
            "lr": [0.001, 0.0005, 0.0001],
        }.items():
            rows = "".join(f"{s}\t{v}\n" for s, v in enumerate(values, 1))
            (log / f"{curve}.tsv").write_text(f"step\t{curve}\n{rows}")


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository: workspace tasks sel (with class names) and wsel; 2 rows x 2 seeds."""
    root = tmp_path_factory.mktemp("site_project")
    shutil.copy2(ROOT / "params.yaml", root / "params.yaml")
    shutil.copy2(ROOT / "dvc.yaml", root / "dvc.yaml")
    (root / "ablations.yaml").write_text(yaml.safe_dump(TABLE, sort_keys=False))
    (root / "metrics").mkdir()
    (root / "metrics" / "download.json").write_text(json.dumps({"source": "synthetic"}))
    rng = np.random.default_rng(0)
    labels = labels_of(rng)
    write_task(root, "sel", labels, corrupt(labels, 0.2, rng), NAMES)
    write_task(root, "wsel", labels, corrupt(labels, 0.4, rng))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "workspace")
    head = git(root, "rev-parse", "HEAD").strip()
    params = yaml.safe_load((root / "params.yaml").read_text())
    definitions = load_ablations(root / "ablations.yaml", root / "dvc.yaml", root / "params.yaml")
    share = {"base": 0.5, "rep": 0.1}  # the rep row predicts better
    for (_, row, seed), cell in plan(definitions.tables, SEEDS).items():
        git(root, "checkout", "-q", "--detach", head)
        overrides = {key: yaml.safe_load(value) for key, value in cell.experiment.overrides}
        changed = apply_overrides(params, {**overrides, "train.seed": seed})
        (root / "params.yaml").write_text(yaml.safe_dump(changed))
        write_task(root, "sel", labels, corrupt(labels, share[row], rng), NAMES, curves=False)
        git(root, "commit", "-qam", cell.experiment.name)
        commit = git(root, "rev-parse", "HEAD").strip()
        ref = f"refs/exps/{head[:2]}/{head[2:]}/{cell.experiment.name}"
        git(root, "update-ref", ref, commit)
    git(root, "checkout", "-q", "main")
    return root


@pytest.fixture
def in_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(project)
    return project
