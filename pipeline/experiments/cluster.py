"""The tables' experiments as jobs on a SLURM cluster, or on this machine, through submitit.

``python -m pipeline.experiments.tables run ID --executor slurm`` submits every experiment of the
table(s) that the shared git remote lacks as one SLURM job array (``--executor local``: the
same jobs as processes of this machine, ``--jobs`` at a time). The options live in
``cluster.yaml`` (:class:`ClusterConfig`). Each job (:class:`ExperimentJob`):

1. clones the git remote at the table's commit into node-local scratch;
2. points the clone at the shared DVC cache and the DVC remote (plus ``dvc_config``);
3. runs ``dvc exp run -n <name> -S ... <targets>`` in the clone;
4. pushes the experiment (``dvc exp push``: the git ref to the git remote, its outputs to
   the DVC remote);
5. reads the ref back from the git remote (``git ls-remote``). A ref that is missing or
   points at another commit fails the job: ``dvc exp push`` exits 0 when it skips a
   diverged experiment, so its exit status alone proves nothing.

A job whose experiment is already at the remote returns at once, so a requeued job never
pushes a second, diverged copy. A requeued or resubmitted job reruns its experiment from
scratch in a fresh clone (the resume state of :mod:`pipeline.training.resume` lives in the clone's
``.resume/`` on node-local scratch); stages whose results are in the shared cache's
run-cache are restored, not rerun.

``python -m pipeline.experiments.tables render ID --executor slurm`` first fetches the table's
experiments from the git remote (:func:`pull_experiments`).

As with the local queue, a row's experiment also counts as done when one of its cell's
alternatives (:attr:`pipeline.experiments.ablations.Cell.alternatives`: the same overrides and
seed, made by a wider or narrower selection of tables) that serves every cell of it is at the
remote, and those alternatives are pulled with it.
"""

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tqdm import tqdm

from pipeline.errors import PipelineError
from pipeline.experiments.ablations import Cell, Experiment, is_served

CLUSTER_FILE = Path("cluster.yaml")
EXECUTORS = ("dvc-queue", "slurm", "local")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SlurmOptions(_Strict):
    """What each SLURM job asks for (``sbatch`` options)."""

    partition: str | None = None
    account: str | None = None
    gpus_per_job: int = Field(1, ge=0)
    cpus_per_job: int = Field(8, ge=1)
    mem_gb: float = Field(32.0, gt=0)
    time_min: int = Field(120, ge=1)
    array_parallelism: int = Field(8, ge=1)
    python: str | None = None
    additional: dict[str, str | int] = Field(default_factory=dict)


class ClusterConfig(_Strict):
    """``cluster.yaml``: the remotes, the shared cache, scratch, logs and the SLURM options."""

    git_remote: str
    dvc_remote: str
    cache_dir: str
    scratch: str = "/tmp"
    logs: str = "logs/submitit"
    setup: list[str] = Field(default_factory=list)
    dvc_config: dict[str, str | int | bool] = Field(default_factory=dict)
    slurm: SlurmOptions = Field(default_factory=SlurmOptions)


def load_cluster(path: str | os.PathLike = CLUSTER_FILE) -> ClusterConfig:
    """Read and validate ``cluster.yaml``.

    Raises:
        PipelineError: a missing file, invalid YAML, an unknown key or a wrong value, with
            the file and key named.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: cluster options not found (see README, On a SLURM cluster)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise PipelineError(f"{path}: not valid YAML ({err})") from None
    try:
        return ClusterConfig.model_validate(data)
    except ValidationError as err:
        lines = [f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()]
        raise PipelineError("\n".join(lines)) from None


# ---------------------------------------------------------------------------------------
# git and dvc


def _refs_prefix(baseline: str) -> str:
    return f"refs/exps/{baseline[:2]}/{baseline[2:]}/"


def _git(*args: str, cwd: str | os.PathLike | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise PipelineError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def remote_experiments(git_remote: str, baseline: str) -> dict[str, str]:
    """Name -> commit of every experiment of ``baseline`` at ``git_remote`` (``git ls-remote``)."""
    prefix = _refs_prefix(baseline)
    found = {}
    for line in _git("ls-remote", "--refs", git_remote).splitlines():
        sha, ref = line.split()
        if ref.startswith(prefix):
            found[ref.removeprefix(prefix)] = sha
    return found


def require_on_remote(baseline: str, git_remote: str) -> None:
    """Raise unless a branch or tag of ``git_remote`` contains ``baseline``: jobs clone it."""
    for line in _git("ls-remote", "--heads", "--tags", git_remote).splitlines():
        sha = line.split()[0]
        contained = subprocess.run(
            ["git", "merge-base", "--is-ancestor", baseline, sha], capture_output=True
        )
        if contained.returncode == 0:
            return
    raise PipelineError(
        f"commit {baseline[:10]} is on no branch of the git remote {git_remote}: the jobs "
        "clone it from there, so push it first (git push <remote> HEAD)"
    )


def _call(args: list[str], cwd: Path) -> None:
    """Run a command of a job, its output going to the job's log; raise if it fails."""
    print(f"+ {shlex.join(args)}", flush=True)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    started = time.monotonic()
    code = subprocess.run(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL).returncode
    print(f"  ({time.monotonic() - started:.1f} s, exit {code})", flush=True)
    if code != 0:
        raise PipelineError(f"{shlex.join(args)} failed (its output is above in this log)")


def _dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


# ---------------------------------------------------------------------------------------
# The job


@dataclass(frozen=True)
class ExperimentJob:
    """One experiment as a job: clone, run, push, check (see the module docstring).

    Args:
        config: the cluster options.
        baseline: the commit the experiment is based on (the table's ``HEAD``).
    """

    config: ClusterConfig
    baseline: str

    def __call__(self, name: str, dvc_args: list[str]) -> str:
        """Run the experiment ``name`` (``dvc exp run`` arguments ``dvc_args``); its commit."""
        remote = self.config.git_remote
        done = remote_experiments(remote, self.baseline).get(name)
        if done is not None:
            print(f"{name}: already at {remote} ({done}); nothing to do", flush=True)
            return done
        scratch = Path(os.path.expandvars(self.config.scratch))
        if "$" in str(scratch) or not scratch.is_absolute():
            raise PipelineError(
                f"cluster.yaml: scratch {self.config.scratch!r} is {scratch} "
                "on this node: expected an absolute path (is the variable set?)"
            )
        work = scratch / f"avel-{name}-{os.getpid()}"
        try:
            self._prepare(work)
            _call(_dvc(*dvc_args), work)
            sha = _git("rev-parse", _refs_prefix(self.baseline) + name, cwd=work).strip()
            _call(_dvc("exp", "push", "origin", name), work)
            return self._check_pushed(name, sha)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _prepare(self, work: Path) -> None:
        """A clone of the baseline using the shared cache and the DVC remote."""
        work.parent.mkdir(parents=True, exist_ok=True)
        _call(
            ["git", "clone", "-q", "--no-checkout", self.config.git_remote, str(work)], work.parent
        )
        _call(["git", "checkout", "-q", "--detach", self.baseline], work)
        settings = {"cache.dir": self.config.cache_dir, **self.config.dvc_config}
        for key, value in settings.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            _call(_dvc("config", "--local", key, text), work)
        _call(_dvc("remote", "add", "--local", "-f", "-d", "cluster", self.config.dvc_remote), work)

    def _check_pushed(self, name: str, sha: str) -> str:
        """``sha`` if the git remote has the experiment ``name`` at ``sha``; raise otherwise."""
        found = remote_experiments(self.config.git_remote, self.baseline).get(name)
        if found is None:
            raise PipelineError(
                f"{name}: dvc exp push exited 0 but the git remote has no ref for it"
            )
        if found != sha:
            raise PipelineError(
                f"{name}: the git remote holds another experiment of this name ({found}, "
                f"diverged from ours, {sha}); ours was not pushed"
            )
        print(f"{name}: pushed and found at {self.config.git_remote} ({sha})", flush=True)
        return sha


# ---------------------------------------------------------------------------------------
# Submitting and waiting


def make_executor(config: ClusterConfig, kind: str, folder: Path) -> Any:
    """The submitit executor of ``kind`` (``slurm`` or ``local``) with the options of ``config``.

    The local executor shows every job all GPUs of the machine; each experiment's stages
    then claim their own GPU (:func:`pipeline.device.claim_gpu`).
    """
    import submitit

    if kind == "slurm":
        options = config.slurm
        executor = submitit.SlurmExecutor(folder=folder, python=options.python)
        gpus = {"gpus_per_node": options.gpus_per_job} if options.gpus_per_job else {}
        executor.update_parameters(
            job_name="avel-tables",
            partition=options.partition,
            account=options.account,
            cpus_per_task=options.cpus_per_job,
            mem=f"{int(options.mem_gb * 1024)}M",
            time=options.time_min,
            array_parallelism=options.array_parallelism,
            setup=config.setup,
            additional_parameters=dict(options.additional),
            **gpus,
        )
        return executor
    import torch

    executor = submitit.LocalExecutor(folder=folder)
    gpus = torch.cuda.device_count()
    executor.update_parameters(
        timeout_min=config.slurm.time_min,
        gpus_per_node=gpus,
        visible_gpus=list(range(gpus)),
        setup=config.setup,
    )
    return executor


def _in_queue() -> set[str] | None:
    """The ids of the SLURM jobs (array tasks one by one) still queued or running."""
    result = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True)
    return set(result.stdout.split()) if result.returncode == 0 else None


class _Waiter:
    """Whether jobs are finished: their result file, or (SLURM without accounting, where
    ``sacct`` cannot answer) absence from ``squeue`` on two polls in a row."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.gone: set[str] = set()

    def finished(self, jobs: list) -> list:
        queued = _in_queue() if self.kind == "slurm" else None
        done = []
        for job in jobs:
            if job.done():
                done.append(job)
            elif queued is not None and job.job_id not in queued:
                if job.job_id in self.gone:
                    done.append(job)
                self.gone.add(job.job_id)
        return done


def run_jobs(
    experiments: list[Experiment],
    labels: dict[str, str],
    config: ClusterConfig,
    kind: str,
    baseline: str,
    jobs: int = 1,
    poll: float = 5.0,
    alternatives: dict[str, tuple[Experiment, ...]] | None = None,
) -> dict[str, str]:
    """Submit the experiments that the git remote lacks; wait for them with progress.

    Args:
        experiments: the experiments of the table(s), each once.
        labels: name -> the table rows and seed it fills (for the report).
        config: the cluster options.
        kind: ``slurm`` (one job array, ``array_parallelism`` at a time) or ``local``
            (processes here, ``jobs`` at a time).
        baseline: the commit to run them on; it must be on a branch of the git remote.
        jobs: local jobs at a time (default 1).
        poll: seconds between checks (default 5).
        alternatives: experiment name -> experiments that serve all its cells as well
            (``pipeline.experiments.tables._served_by``); one of them at the remote counts
            as the experiment (default none).

    Returns:
        Name -> ``"at remote"`` (skipped), ``"Success"`` or ``"Failed"``. Failed jobs are
        printed by name with their log.
    """
    require_on_remote(baseline, config.git_remote)
    at_remote = remote_experiments(config.git_remote, baseline)
    alternatives = alternatives or {}
    status = {}
    missing = []
    for experiment in experiments:
        if is_served(experiment, alternatives, at_remote):
            status[experiment.name] = "at remote"
        else:
            missing.append(experiment)
    print(f"tables: {len(status)} experiments at the remote, {len(missing)} to submit ({kind})")
    if not missing:
        return status
    executor = make_executor(config, kind, Path(config.logs))
    items = [(e.name, e.command(queue=False)) for e in missing]
    job = ExperimentJob(config, baseline)
    with tqdm(total=len(items), desc="jobs", unit="job") as bar:
        for name, finished in _finished_jobs(executor, job, items, kind, jobs, poll):
            status[name] = _outcome(finished, labels[name])
            bar.update(1)
    return status


def _finished_jobs(
    executor: Any, job: ExperimentJob, items: list, kind: str, jobs: int, poll: float
) -> Iterator[tuple[str, Any]]:
    """Submit ``items`` (name, ``dvc exp run`` arguments) and yield each job as it ends.

    SLURM: one job array (the executor caps how many run at once); local: ``jobs`` processes
    at a time, the next one submitted when one ends.
    """
    pending = list(items)
    running: dict[str, Any] = {}
    if kind == "slurm":
        names, args = zip(*items, strict=True)
        launched = executor.map_array(job, list(names), list(args))
        running, pending = dict(zip(names, launched, strict=True)), []
    waiter = _Waiter(kind)
    while running or pending:
        while pending and len(running) < jobs:
            name, args = pending.pop(0)
            running[name] = executor.submit(job, name, args)
        time.sleep(poll)
        ended = waiter.finished(list(running.values()))
        for name in [name for name, submitted in running.items() if submitted in ended]:
            yield name, running.pop(name)


def _outcome(job: Any, label: str) -> str:
    """``Success``, or ``Failed`` after printing the experiment, the error and the log."""
    try:
        job.result()
        return "Success"
    except Exception as err:  # noqa: BLE001 (any failure of a job is reported alike)
        last = str(err).strip().splitlines()[-1:] or [type(err).__name__]
        print(f"tables: FAILED {label}: {last[0]}\n  log: {job.paths.stderr}", file=sys.stderr)
        return "Failed"


def pull_experiments(config: ClusterConfig, baseline: str, names: list[str]) -> list[str]:
    """Fetch the experiments ``names`` of ``baseline`` that the git remote has (``dvc exp
    pull``, git refs only: the tables read the committed metrics and predictions).

    Returns:
        The names pulled.
    """
    found = sorted(set(names) & set(remote_experiments(config.git_remote, baseline)))
    if found:
        args = ["exp", "pull", "--no-cache", config.git_remote, *found]
        result = subprocess.run(_dvc(*args), capture_output=True, text=True)
        if result.returncode != 0:
            raise PipelineError(f"dvc {' '.join(args)}: {(result.stderr or result.stdout).strip()}")
    print(f"tables: pulled {len(found)} of {len(names)} experiments from {config.git_remote}")
    return found


def wanted_names(cells: list[Cell]) -> list[str]:
    """Every experiment a render of ``cells`` may read: each cell's own and its alternatives."""
    return sorted({e.name for cell in cells for e in cell.candidates()})


def on_cluster(
    command: str,
    tables: list,
    seeds: list[int],
    kind: str,
    cluster_file: str,
    jobs: int = 1,
    every_table: list | None = None,
) -> list[str]:
    """``run``: submit the tables' missing experiments as jobs, then pull them; ``render``:
    pull them. The caller renders.

    Args:
        every_table: the tables whose experiments can stand in for a cell
            (:func:`pipeline.experiments.ablations.plan`; default: ``tables``).

    Returns:
        The names of the experiments whose jobs failed (``run`` only).
    """
    from pipeline.experiments.ablations import plan
    from pipeline.experiments.tables import _require_clean_head, _served_by, head

    config = load_cluster(cluster_file)
    cells = plan(tables, seeds, every_table)
    rows: dict[str, list[str]] = {}
    seed_of: dict[str, int] = {}
    for (table, row, seed), cell in cells.items():
        rows.setdefault(cell.experiment.name, []).append(f"{table}/{row}")
        seed_of[cell.experiment.name] = seed
    experiments = sorted({c.experiment for c in cells.values()}, key=lambda e: e.name)
    labels = {n: f"{', '.join(r)} seed {seed_of[n]} ({n})" for n, r in rows.items()}
    failed = []
    if command == "run":
        _require_clean_head()
        served = _served_by(cells.values())
        status = run_jobs(experiments, labels, config, kind, head(), jobs, alternatives=served)
        failed = sorted(name for name, state in status.items() if state == "Failed")
    pull_experiments(config, head(), wanted_names(list(cells.values())))
    return failed
