"""What the report site shows: the workspace's results and those of the DVC experiments.

A *run* is the workspace or one experiment (a commit under ``refs/exps/``, local or brought
by ``dvc exp pull``); its results are read from the files the pipeline commits, in the
workspace or with ``git show <commit>:<path>``:

- ``reports/predictions/<task>.json``: the test videos' labels and predictions (and, since
  the evaluate stage keeps them, each segment's three most probable classes);
- ``metrics/evaluate/<task>.json``: the metrics with their bootstrap CIs;
- ``reports/<task>_details.json``: class names, when the store has them;
- ``metrics/train_log/<task>/plots/metrics/*.tsv``: dvclive's per-epoch curves;
- ``params.yaml``; for the workspace, the params that ``dvc.lock`` recorded for its
  outputs, with a note naming each key where ``params.yaml`` now differs (an edited
  ``params.yaml`` not yet reproduced).

An experiment that reran only some stages (``dvc exp run ... evaluate@sel``) still commits
the other tasks' files of its baseline; a task whose predictions are the same blob as in the
baseline is left out of that experiment, so that each result is shown once.
"""

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from pipeline.config import paths
from pipeline.errors import PipelineError

TRAIN_CURVES = ("train_loss", "val_accuracy", "lr")
BACKGROUND = 28  # the background class
WORKSPACE = "workspace"


@dataclass
class Result:
    """One evaluated task of a run.

    Args:
        predictions: ``labels``, ``model`` and the other strategies' ``(n, T)`` classes,
            ``rows`` ``(n,)``, and optionally ``model_top_classes`` and
            ``model_top_probabilities`` ``(n, T, k)``.
        metrics: ``metrics/evaluate/<task>.json``.
        class_names: a name per class, or ``None``.
        curves: dvclive curve name -> ``(step, value)`` pairs.
    """

    predictions: dict[str, np.ndarray]
    metrics: dict
    class_names: list[str] | None = None
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


@dataclass
class Run:
    """The workspace (``commit`` ``None``) or an experiment, and its results per task.

    Args:
        note: what the reader must know about the params shown (default ``""``): for the
            workspace, where ``params.yaml`` differs from what ``dvc.lock`` recorded.
    """

    name: str
    commit: str | None
    params: dict
    results: dict[str, Result]
    note: str = ""


def degenerate(result: Result) -> str | None:
    """Why a result's model is degenerate, or ``None``: it predicts one class (background,
    say) on every test segment, or scores below the naive constant strategy (the test
    split's most frequent class on every segment)."""
    labels, model = result.predictions["labels"], result.predictions["model"]
    classes = np.unique(model)
    if len(classes) == 1:
        which = "background" if int(classes[0]) == BACKGROUND else f"class {int(classes[0])}"
        return f"predicts {which} on every test segment"
    accuracy = float(np.mean(model == labels))
    _, counts = np.unique(labels, return_counts=True)
    constant = float(counts.max() / labels.size)
    if accuracy < constant:
        return (
            f"accuracy {100 * accuracy:.1f} is below {100 * constant:.1f}, that of predicting "
            "the most frequent class everywhere"
        )
    return None


def lock_params(text: str | None) -> dict:
    """The flat params that ``dvc.lock`` (its text) recorded for the stages' outputs."""
    if not text:
        return {}
    recorded: dict = {}
    for stage in (yaml.safe_load(text) or {}).get("stages", {}).values():
        for key, value in (stage.get("params") or {}).get("params.yaml", {}).items():
            if isinstance(value, dict) and value:
                recorded.update(flatten(value, f"{key}."))
            else:
                recorded[key] = value
    return recorded


def _workspace_params(params: dict, recorded: dict) -> tuple[dict, str]:
    """``params.yaml``'s flat params with ``dvc.lock``'s recorded values over them, and a
    note naming the keys where the two differ."""
    absent = object()
    differ = sorted(key for key, value in recorded.items() if params.get(key, absent) != value)
    if not differ:
        return {**params, **recorded}, ""
    shown = ", ".join(
        f"{key} (dvc.lock: {json.dumps(recorded[key])}, params.yaml: "
        f"{json.dumps(params.get(key, 'absent'))})"
        for key in differ[:8]
    )
    more = len(differ) - 8
    note = (
        "params.yaml differs from dvc.lock, whose params the workspace's outputs were made "
        f"with (shown here): {shown}"
        + (f" and {more} more" if more > 0 else "")
        + "; dvc repro makes the outputs follow params.yaml"
    )
    return {**params, **recorded}, note


def git(*args: str, check: bool = True) -> str | None:
    """Output of a git command, ``None`` when it fails and ``check`` is false."""
    result = subprocess.run(["git", *args], capture_output=True, text=True)
    if result.returncode != 0:
        if check:
            raise PipelineError(f"git {' '.join(args)}: {result.stderr.strip()}")
        return None
    return result.stdout


class Files:
    """Reads the committed outputs of the workspace (``commit`` ``None``) or of a commit."""

    def __init__(self, commit: str | None) -> None:
        self.commit = commit

    def text(self, path: Path) -> str | None:
        """The file's text, ``None`` when it does not exist there."""
        if self.commit is None:
            return path.read_text() if path.exists() else None
        return git("show", f"{self.commit}:{path.as_posix()}", check=False)

    def json(self, path: Path) -> dict | None:
        text = self.text(path)
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            where = path if self.commit is None else f"{self.commit[:7]}:{path}"
            raise PipelineError(f"{where}: expected JSON, found a parse error: {error}") from None


def flatten(params: dict, prefix: str = "") -> dict:
    """Nested params as ``{"a.b.c": value}``."""
    flat = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def read_curves(files: Files, task: str) -> dict[str, list[tuple[int, float]]]:
    """dvclive's ``step``/value TSVs of a task's training log (those that exist)."""
    curves = {}
    for curve in TRAIN_CURVES:
        path = paths.TRAIN_LOGS / task / "plots" / "metrics" / f"{curve}.tsv"
        text = files.text(path)
        if text is None:
            continue
        lines = text.strip().splitlines()
        if not lines or lines[0].split("\t") != ["step", curve]:
            raise PipelineError(f"{path}: expected the header 'step\\t{curve}', found {lines[:1]}")
        curves[curve] = [(int(s), float(v)) for s, v in (line.split("\t") for line in lines[1:])]
    return curves


def _predictions(saved: dict, path: Path) -> dict[str, np.ndarray]:
    missing = {"labels", "model"} - set(saved)
    if missing:
        raise PipelineError(f"{path}: expected the keys labels and model, missing {missing}")
    arrays = {key: np.asarray(value) for key, value in saved.items()}
    if arrays["labels"].ndim != 2 or arrays["model"].shape != arrays["labels"].shape:
        raise PipelineError(
            f"{path}: expected (n, T) labels and model predictions of one shape, found "
            f"{arrays['labels'].shape} and {arrays['model'].shape}"
        )
    return arrays


def read_result(files: Files, task: str) -> Result | None:
    """The task's evaluation in ``files``, ``None`` when it was not evaluated there."""
    path = paths.PREDICTIONS / f"{task}.json"
    saved = files.json(path)
    if saved is None:
        return None
    metrics = files.json(paths.EVALUATE_METRICS / f"{task}.json") or {}
    details = files.json(paths.REPORTS / f"{task}_details.json") or {}
    return Result(
        _predictions(saved, path), metrics, details.get("class_names"), read_curves(files, task)
    )


def read_run(name: str, commit: str | None, baseline: str | None = None) -> Run:
    """A run's params and results; tasks unchanged from ``baseline`` are left out."""
    files = Files(commit)
    params = flatten(yaml.safe_load(files.text(Path("params.yaml")) or "{}") or {})
    note = ""
    if commit is None:  # an experiment commits params.yaml with its dvc.lock
        params, note = _workspace_params(params, lock_params(files.text(Path("dvc.lock"))))
    results = {}
    for task in paths.EVALUATED:
        blob = paths.PREDICTIONS / f"{task}.json"
        if commit is not None and baseline is not None:
            mine = git("rev-parse", f"{commit}:{blob.as_posix()}", check=False)
            theirs = git("rev-parse", f"{baseline}:{blob.as_posix()}", check=False)
            if mine is not None and mine == theirs:
                continue
        result = read_result(files, task)
        if result is not None:
            results[task] = result
    return Run(name, commit, params, results, note)


def experiments_of(baseline: str) -> dict[str, str]:
    """Name -> commit of every DVC experiment based on ``baseline`` (sorted by name)."""
    prefix = f"refs/exps/{baseline[:2]}/{baseline[2:]}/"
    lines = git("for-each-ref", "--format=%(refname) %(objectname)", prefix).splitlines()
    return dict(sorted((ref.removeprefix(prefix), sha) for ref, sha in map(str.split, lines)))


def collect(names: list[str] | None = None) -> list[Run]:
    """The workspace and the experiments of ``HEAD`` (all, or those named), in that order.

    Args:
        names: experiment names to include (default: every experiment of ``HEAD``).
    """
    baseline = (git("rev-parse", "HEAD", check=False) or "").strip() or None
    runs = [read_run(WORKSPACE, None)]
    found = experiments_of(baseline) if baseline else {}
    unknown = set(names or ()) - set(found)
    if unknown:
        raise PipelineError(
            f"--runs: no experiment of HEAD named {sorted(unknown)}; found {sorted(found)}"
        )
    for name, commit in found.items():
        if names is None or name in names:
            run = read_run(name, commit, baseline)
            if run.results:
                runs.append(run)
    return runs


def differing_params(runs: list[Run]) -> list[str]:
    """The params whose values are not the same in every run (sorted)."""
    keys = sorted({key for run in runs for key in run.params})
    missing = object()
    return [
        key
        for key in keys
        if len({json.dumps(run.params.get(key, missing), default=str) for run in runs}) > 1
    ]
