"""Which experiments hold at a commit, here or at a git remote.

An experiment is a git ref ``refs/exps/<baseline>/<name>`` (DVC's layout). Its results hold
at a commit when it is based on that commit, or on an earlier one with the same stage inputs
(:func:`inputs_unchanged`): a commit that changes only the README, or only the rendered
tables, reuses every experiment. The tables command's local queue
(:mod:`pipeline.experiments.tables`) and the cluster executor
(:mod:`pipeline.experiments.cluster`) both decide reuse here; this module imports neither.
"""

import hashlib
import json
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

import yaml

from pipeline.errors import PipelineError
from pipeline.experiments.ablations import Cell, Experiment
from pipeline.models import code_fingerprint

TABLES_DIR = Path("reports") / "tables"  # what ``render`` writes (tables.md, .png, README.md)
MODELS_DIR = "pipeline/models"  # the model files: deps of a run through data/model_code.json

_BASELINE_REF = re.compile(r"^refs/exps/([0-9a-f]{2})/([0-9a-f]{38})/(.+)$")


def git(*args: str) -> str:
    """The output of ``git args`` in the current directory; raise with git's message."""
    result = subprocess.run(["git", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise PipelineError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def head() -> str:
    """The commit experiments are based on."""
    return git("rev-parse", "HEAD").strip()


def refs_prefix(baseline: str) -> str:
    """``refs/exps/ab/cdef.../``: where DVC keeps the experiments of ``baseline``."""
    return f"refs/exps/{baseline[:2]}/{baseline[2:]}/"


def existing_experiments(baseline: str) -> dict[str, str]:
    """Name -> commit of every experiment based on ``baseline`` (local or pulled)."""
    prefix = refs_prefix(baseline)
    lines = git("for-each-ref", "--format=%(refname) %(objectname)", prefix).splitlines()
    return {ref.removeprefix(prefix): sha for ref, sha in (line.split() for line in lines)}


def code_deps(commit: str) -> set[str]:
    """The stage inputs that git holds at ``commit``: every dependency path of every stage of
    ``dvc.yaml`` and the file itself, less what a stage writes (:func:`stage_outputs`).

    A file that one stage writes and another reads, such as ``metrics/refine.json`` (a dep of
    ``report``), is determined by the inputs of the stage that writes it, and every experiment
    writes it again: a commit that only recommits it changes no input. The outputs of an
    ``always_changed`` stage stay inputs: they record files outside git (``download`` writes
    the sha256 of the user's data to ``metrics/download.json``).
    """
    stages = yaml.safe_load(git("show", f"{commit}:dvc.yaml"))["stages"]
    deps = {"dvc.yaml"}
    for stage in stages.values():
        deps |= set(stage.get("do", stage).get("deps", []))
    return deps - stage_outputs(stages)


def stage_outputs(stages: dict) -> set[str]:
    """The paths that the stages of a ``dvc.yaml`` write (``outs``, ``metrics``, ``plots``),
    each ``foreach`` stage's ``${item}`` expanded, except those of ``always_changed`` stages."""
    written: set[str] = set()
    for stage in stages.values():
        body = stage.get("do", stage)
        if body.get("always_changed"):
            continue
        items = stage.get("foreach", [None])
        for key in ("outs", "metrics", "plots"):
            for entry in body.get(key, []):
                path = next(iter(entry)) if isinstance(entry, dict) else entry
                written |= {path.replace("${item}", str(item)) for item in items}
    return written


def _params(commit: str) -> object:
    return yaml.safe_load(git("show", f"{commit}:params.yaml"))


def inputs_unchanged(baseline: str, commit: str) -> bool:
    """Whether no stage input differs between two commits: no dependency of any stage of
    either ``dvc.yaml`` (code files, the file itself) changed, and ``params.yaml`` holds the
    same values (comments aside). Conservative: one changed code file of any stage
    invalidates every experiment, not only those that run that stage."""
    if baseline == commit:
        return True
    try:
        changed = set(git("diff", "--name-only", baseline, commit).split())
    except PipelineError:  # the baseline commit is not here
        return False
    if changed & (code_deps(baseline) | code_deps(commit)):
        return False
    if "params.yaml" in changed:
        return _params(baseline) == _params(commit)
    return True


def inputs_key(commit: str) -> str:
    """A hash of the stage inputs of ``commit``: the git blobs of every stage dependency
    (:func:`code_deps`) and of every model file (``pipeline/models/``, conservatively), and
    the values of ``params.yaml``. Two commits with the same key
    hold the same experiments; it names the claims and resume states of the cluster."""
    blobs = git("ls-tree", "-r", commit, "--", *sorted(code_deps(commit)), MODELS_DIR)
    params = json.dumps(_params(commit), sort_keys=True, default=str)
    return hashlib.sha256(f"{blobs}\0{params}".encode()).hexdigest()[:20]


def holding(refs: Iterable[tuple[str, str]], commit: str) -> dict[str, tuple[str, str]]:
    """Among ``refs`` (ref name, commit), name -> (ref, commit) of every experiment whose
    results hold at ``commit``: those based on it, then those based on an earlier commit
    with the same stage inputs (:func:`inputs_unchanged`)."""
    found: dict[str, tuple[str, str]] = {}
    later: list[tuple[str, str, str, str]] = []  # baseline, name, ref, commit
    for ref, sha in refs:
        match = _BASELINE_REF.match(ref)
        if match is None:
            continue
        if match[1] + match[2] == commit:
            found[match[3]] = (ref, sha)
        else:
            later.append((match[1] + match[2], match[3], ref, sha))
    verdicts: dict[str, bool] = {}
    models_changed: dict[str, bool] = {}
    for baseline, name, ref, sha in later:
        if name in found:
            continue
        if baseline not in verdicts:
            verdicts[baseline] = inputs_unchanged(baseline, commit)
            models_changed[baseline] = bool(models_diff(baseline, commit))
        if verdicts[baseline] and (not models_changed[baseline] or model_code_unchanged(sha)):
            found[name] = (ref, sha)
    return found


def models_diff(baseline: str, commit: str) -> list[str]:
    """The files under ``pipeline/models/`` that differ between two commits."""
    return git("diff", "--name-only", baseline, commit, "--", MODELS_DIR).split()


def model_code_unchanged(experiment: str) -> bool:
    """Whether the model an experiment built has the same code in the working tree: the
    hash of ``data/model_code.json`` in the experiment's ``dvc.lock`` against the text of
    :func:`pipeline.models.code_fingerprint` now. The model files are no code deps of
    ``dvc.yaml`` (docs/design.md §8), so :func:`inputs_unchanged` does not see them; an
    experiment whose commit is not here (at a git remote, not fetched) does not count."""
    try:
        lock = yaml.safe_load(git("show", f"{experiment}:dvc.lock")) or {}
    except PipelineError:
        return False
    stage = lock.get("stages", {}).get("model_code")
    if stage is None:  # it built no model of the registry
        return True
    try:
        text = code_fingerprint(stage["params"]["params.yaml"]["model.name"])
    except PipelineError:  # the model was removed or renamed since
        return False
    return hashlib.md5(text.encode()).hexdigest() == stage["outs"][0]["md5"]


def reusable_experiments(commit: str) -> dict[str, str]:
    """Name -> commit of every experiment here whose results hold at ``commit``, such as
    those of the commit before a README edit (:func:`holding`)."""
    lines = git("for-each-ref", "--format=%(refname) %(objectname)", "refs/exps/").splitlines()
    refs = [(ref, sha) for ref, sha in (line.split() for line in lines)]
    return {name: sha for name, (_, sha) in holding(refs, commit).items()}


def remote_refs(git_remote: str) -> list[tuple[str, str]]:
    """(ref, commit) of every experiment at ``git_remote`` (``git ls-remote``)."""
    refs = []
    for line in git("ls-remote", "--refs", git_remote, "refs/exps/*").splitlines():
        sha, ref = line.split()
        refs.append((ref, sha))
    return refs


def reusable_at_remote(git_remote: str, commit: str) -> dict[str, tuple[str, str]]:
    """Name -> (ref, commit) of every experiment at ``git_remote`` whose results hold at
    ``commit`` (:func:`holding`; a baseline that is not here never counts)."""
    return holding(remote_refs(git_remote), commit)


def served_by(cells: Iterable[Cell]) -> dict[str, tuple[Experiment, ...]]:
    """Experiment name -> the experiments that serve every cell of it (the alternatives its
    cells share, :attr:`pipeline.experiments.ablations.Cell.alternatives`)."""
    shared: dict[str, set[Experiment]] = {}
    for cell in cells:
        mine = set(cell.alternatives)
        name = cell.experiment.name
        shared[name] = shared[name] & mine if name in shared else mine
    return {name: tuple(sorted(ex, key=lambda e: e.name)) for name, ex in shared.items()}


def require_clean_head() -> None:
    """Raise unless the tracked files are as committed, the rendered tables aside.

    ``render`` rewrites ``reports/tables/`` (:data:`TABLES_DIR`), which no stage reads: a
    workspace that differs from ``HEAD`` only there runs the same experiments, so it passes
    (commit the render whenever convenient; a commit that changes only it reuses every
    experiment, :func:`inputs_unchanged`).
    """
    lines = git("status", "--porcelain", "--untracked-files=no").splitlines()
    changed = [line[3:] for line in lines if line.strip()]
    deps = code_deps("HEAD")
    blocking = [
        path for path in changed if not (Path(path).is_relative_to(TABLES_DIR) and path not in deps)
    ]
    if blocking:
        raise PipelineError(
            "the workspace has uncommitted changes: experiments are queued from a clean HEAD "
            "(commit or stash first; rendered tables under "
            f"{TABLES_DIR}/ do not count):\n" + "\n".join(blocking)
        )
