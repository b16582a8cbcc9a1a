"""The tables' experiments as jobs on a SLURM cluster, or on this machine, through submitit.

``python -m pipeline.experiments.tables run ID --executor slurm`` submits every experiment of the
table(s) that the shared git remote lacks as one SLURM job array (``--executor local``: the
same jobs as processes of this machine, ``--jobs`` at a time). The options live in
``cluster.yaml`` (:class:`ClusterConfig`); what a user sees and does on a preemption, a failed
row or a concurrent run is in ``docs/cluster.md``.

Before submitting, a run:

1. counts as done every experiment at the remote whose results hold at ``HEAD``: based on it,
   or on an earlier commit with the same stage inputs, such as the commit before a README
   edit or a rendered table (:func:`pipeline.experiments.reuse.reusable_at_remote`, the
   local queue's rule), or an alternative that serves all its cells
   (:attr:`pipeline.experiments.ablations.Cell.alternatives`);
2. claims the others at the remote (:mod:`pipeline.experiments.claims`); those another
   run holds are waited for, not submitted.

Each job (:class:`ExperimentJob`):

1. clones the git remote at the table's commit into node-local scratch;
2. points the clone at the shared DVC cache and the DVC remote (plus ``dvc_config``);
3. runs ``dvc exp run -n <name> -S ... <targets>`` in the clone, with the training stages'
   resume states (:mod:`pipeline.training.resume`) in ``resume_dir/<stage inputs>/<name>/``
   on shared storage;
4. pushes the experiment (``dvc exp push``: the git ref to the git remote, its outputs to
   the DVC remote);
5. reads the ref back from the git remote (``git ls-remote``). ``dvc exp push`` exits 0
   when it skips a diverged experiment, so its exit status alone proves nothing: a missing
   ref fails the job; another commit under the name (a concurrent run pushed it first)
   serves the table as well and is returned.

On SLURM's preemption or timeout signal (``USR2``, sent ``signal_delay_s`` before the end)
submitit calls :meth:`ExperimentJob.checkpoint` and requeues the job. The requeued job clones
afresh: the stages whose results are in the shared cache's run-cache are restored, and the
interrupted training resumes from its last epoch in ``resume_dir``. A job whose experiment
is already at the remote returns at once, so a requeued job never pushes a second copy.

``python -m pipeline.experiments.tables render ID --executor slurm`` first fetches the table's
experiments from the git remote (:func:`pull_experiments`).
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from tqdm import tqdm

from pipeline.errors import PipelineError
from pipeline.experiments.ablations import Cell, Experiment, is_served, plan
from pipeline.experiments.claims import Claims
from pipeline.experiments.reuse import (
    git,
    head,
    inputs_key,
    refs_prefix,
    require_clean_head,
    reusable_at_remote,
    served_by,
)
from pipeline.training.resume import RESUME_DIR_ENV

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
    signal_delay_s: int = Field(120, ge=10)
    array_parallelism: int = Field(8, ge=1)
    python: str | None = None
    additional: dict[str, str | int] = Field(default_factory=dict)


class ClusterConfig(_Strict):
    """``cluster.yaml``: the remotes, the shared cache and resume states, scratch, logs, the
    claims' lifetime, the seconds between checks of the jobs and the SLURM options."""

    git_remote: str
    dvc_remote: str
    cache_dir: str
    resume_dir: str | None = None
    scratch: str = "/tmp"
    logs: str = "logs/submitit"
    claim_ttl_min: float = Field(30.0, gt=0)
    poll_s: float = Field(5.0, gt=0)
    setup: list[str] = Field(default_factory=list)
    dvc_config: dict[str, str | int | bool] = Field(default_factory=dict)
    slurm: SlurmOptions = Field(default_factory=SlurmOptions)

    @field_validator("setup")
    @classmethod
    def _posix(cls, lines: list[str]) -> list[str]:
        """The local executor runs the setup lines with ``/bin/sh`` (dash on Debian)."""
        for line in lines:
            if line.split()[:1] == ["source"]:
                raise ValueError(
                    f"{line!r}: `source` is not POSIX sh (the local executor runs setup lines "
                    "with /bin/sh): write `. FILE`"
                )
        return lines


def load_cluster(path: str | os.PathLike = CLUSTER_FILE) -> ClusterConfig:
    """Read and validate ``cluster.yaml``.

    Raises:
        PipelineError: a missing file, invalid YAML, an unknown key or a wrong value, with
            the file and key named.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: cluster options not found (see docs/cluster.md)")
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


def _git(*args: str, cwd: str | os.PathLike | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise PipelineError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def remote_experiments(git_remote: str, baseline: str) -> dict[str, str]:
    """Name -> commit of every experiment of ``baseline`` at ``git_remote`` (``git ls-remote``)."""
    prefix = refs_prefix(baseline)
    found = {}
    for line in _git("ls-remote", "--refs", git_remote, f"{prefix}*").splitlines():
        sha, ref = line.split()
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


def _immune() -> None:
    """In a job's child: ignore the signals SLURM sends to every process of the job on a
    preemption or timeout, so that submitit's handler checkpoints and requeues first."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def _call(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    """Run a command of a job, its output going to the job's log; raise if it fails.

    The command runs in its own process group, killed as a whole when the job is
    interrupted (submitit's requeue exits the job; a stage left behind would go on
    writing to the shared resume state)."""
    print(f"+ {shlex.join(args)}", flush=True)
    started = time.monotonic()
    process = subprocess.Popen(
        args,
        cwd=cwd,
        env={**os.environ, "DVC_NO_ANALYTICS": "1", **(env or {})},
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_immune,  # noqa: PLW1509 (a job runs no threads when it starts one)
    )
    try:
        code = process.wait()
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
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
        key: the stage inputs of ``baseline`` (:func:`pipeline.experiments.reuse.inputs_key`),
            which name its resume states.
    """

    config: ClusterConfig
    baseline: str
    key: str = ""

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
            _call(_dvc(*dvc_args), work, self.resume_env(name))
            sha = _git("rev-parse", refs_prefix(self.baseline) + name, cwd=work).strip()
            _call(_dvc("exp", "push", "origin", name), work)
            return self._check_pushed(name, sha)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def checkpoint(self, name: str, dvc_args: list[str]) -> Any:
        """submitit's hook on a preemption or timeout signal: run the same call again once
        requeued (the training resumes from ``resume_dir``)."""
        import submitit

        where = self.resume_env(name).get(RESUME_DIR_ENV, "epoch 1 (no resume_dir)")
        print(f"{name}: interrupted; requeued, to resume from {where}", flush=True)
        return submitit.helpers.DelayedSubmission(self, name, dvc_args)

    def resume_env(self, name: str) -> dict[str, str]:
        """The environment that puts the training stages' resume states on shared storage:
        ``resume_dir/<stage inputs>/<name>`` (none without ``resume_dir``)."""
        if self.config.resume_dir is None:
            return {}
        folder = Path(os.path.expandvars(self.config.resume_dir)) / (self.key or "any") / name
        return {RESUME_DIR_ENV: str(folder)}

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
        """The commit of the experiment ``name`` at the git remote: ``sha``, or another run's
        (the same experiment, pushed first: ours diverged and was dropped); raise if none."""
        found = remote_experiments(self.config.git_remote, self.baseline).get(name)
        if found is None:
            raise PipelineError(
                f"{name}: dvc exp push exited 0 but the git remote has no ref for it"
            )
        if found != sha:
            print(
                f"{name}: the git remote already holds this experiment ({found}, pushed by "
                f"another run); ours ({sha}) diverged and was not pushed: theirs serves",
                flush=True,
            )
            return found
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
            signal_delay_s=options.signal_delay_s,
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
    alternatives: dict[str, tuple[Experiment, ...]] | None = None,
) -> dict[str, str]:
    """Submit the experiments that the git remote lacks and no other run claims; wait for
    them, and for those another run claims, with progress.

    Args:
        experiments: the experiments of the table(s), each once.
        labels: name -> the table rows and seed it fills (for the report).
        config: the cluster options.
        kind: ``slurm`` (one job array, ``array_parallelism`` at a time) or ``local``
            (processes here, ``jobs`` at a time).
        baseline: the commit to run them on; it must be on a branch of the git remote.
        jobs: local jobs at a time (default 1).
        alternatives: experiment name -> experiments that serve all its cells as well
            (:func:`pipeline.experiments.reuse.served_by`); one of them at the remote counts
            as the experiment (default none).

    Returns:
        Name -> ``"at remote"`` (skipped), ``"Success"``, ``"by another run"`` (claimed by
        a concurrent run, which made it) or ``"Failed"``. Each failure is printed with its
        rows, seed, cause and log.
    """
    alternatives = alternatives or {}
    status: dict[str, str] = {}
    missing = []
    at_remote = reusable_at_remote(config.git_remote, baseline)
    for experiment in experiments:
        if is_served(experiment, alternatives, at_remote):
            status[experiment.name] = "at remote"
        else:
            missing.append(experiment)
    print(f"tables: {len(status)} experiments at the remote, {len(missing)} to submit ({kind})")
    if not missing:
        return status
    require_on_remote(baseline, config.git_remote)
    key = inputs_key(baseline)
    claims = Claims(config.git_remote, key, config.claim_ttl_min)
    try:
        theirs = claims.take([e.name for e in missing])
        if theirs:
            print(f"tables: {len(theirs)} of them claimed by another run, waiting for them:")
            for name, claim in sorted(theirs.items()):
                print(f"  {labels[name]}: claimed by {claim.owner}")
        ours = [e for e in missing if e.name not in theirs]
        if ours:
            job = ExperimentJob(config, baseline, key)
            status.update(_run_ours(ours, labels, config, kind, job, jobs, config.poll_s, claims))
        others = [e for e in missing if e.name in theirs]
        status.update(
            _wait_for_others(others, labels, config, baseline, alternatives, claims, config.poll_s)
        )
    finally:
        claims.release(list(claims.held))
    return status


def _run_ours(
    ours: list[Experiment],
    labels: dict[str, str],
    config: ClusterConfig,
    kind: str,
    job: ExperimentJob,
    jobs: int,
    poll: float,
    claims: Claims,
) -> dict[str, str]:
    """Submit our claimed experiments and wait for them, releasing each claim as it ends."""
    executor = make_executor(config, kind, Path(config.logs))
    items = [(e.name, e.command(queue=False)) for e in ours]
    status = {}
    with tqdm(total=len(items), desc="jobs", unit="job") as bar:
        for name, finished in _finished_jobs(executor, job, items, kind, jobs, poll, claims.renew):
            status[name] = _outcome(finished, labels[name])
            claims.release([name])
            bar.update(1)
    return status


def _wait_for_others(
    others: list[Experiment],
    labels: dict[str, str],
    config: ClusterConfig,
    baseline: str,
    alternatives: dict[str, tuple[Experiment, ...]],
    claims: Claims,
    poll: float,
) -> dict[str, str]:
    """Wait until each experiment another run claims is at the remote, or its claim is gone
    or expired without it (then ``Failed``, printed: run again to submit it)."""
    status: dict[str, str] = {}
    pending = list(others)
    while pending:
        found = reusable_at_remote(config.git_remote, baseline)
        current = claims.read()
        for experiment in list(pending):
            name = experiment.name
            if is_served(experiment, alternatives, found):
                status[name] = "by another run"
            elif name not in current or current[name].expired():
                status[name] = "Failed"
                print(
                    f"tables: NOT DONE {labels[name]}: the run that claimed it ended without "
                    "it (see its own report); run again to submit it",
                    file=sys.stderr,
                )
            else:
                continue
            pending.remove(experiment)
        if pending:
            claims.renew()
            time.sleep(poll)
    if others:
        made = sum(state == "by another run" for state in status.values())
        print(f"tables: {made} of {len(others)} claimed experiments made by the other run")
    return status


def _finished_jobs(
    executor: Any,
    job: ExperimentJob,
    items: list,
    kind: str,
    jobs: int,
    poll: float,
    tick: Callable[[], None] = lambda: None,
) -> Iterator[tuple[str, Any]]:
    """Submit ``items`` (name, ``dvc exp run`` arguments) and yield each job as it ends,
    calling ``tick`` at every poll (the claims' renewal).

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
        tick()
        ended = waiter.finished(list(running.values()))
        for name in [name for name, submitted in running.items() if submitted in ended]:
            yield name, running.pop(name)


# An error line: a stage's ``error: ...`` (pipeline.errors.run_stage), DVC's ``ERROR: ...``,
# a Python exception's last line, a shell's or SLURM's complaint.
_ERROR = re.compile(
    r"^(error|ERROR)\b|: (error|ERROR)\b|^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b(:|$)"
    r"|^/bin/\S*sh: |: (command )?not found$"
)
# Error lines that only repeat an earlier one: DVC's stage wrapper, the job's own, submitit's.
_WRAPPER = re.compile(
    r"^ERROR: failed to reproduce|its output is above in this log|^submitit (ERROR|WARNING)"
)


def failure_cause(stderr: str) -> str | None:
    """The last error line of a job's stderr that is the cause, not a wrapper around it
    (DVC's ``failed to reproduce``, the job's ``failed``); ``None`` if there is none."""
    lines = [line.strip() for line in stderr.splitlines()]
    errors = [line for line in lines if _ERROR.search(line)]
    causes = [line for line in errors if not _WRAPPER.search(line)]
    return (causes or errors or [None])[-1]


def _outcome(job: Any, label: str) -> str:
    """``Success``, or ``Failed`` after printing the rows and seed, the cause and the log."""
    try:
        job.result()
        return "Success"
    except Exception as err:  # noqa: BLE001 (any failure of a job is reported alike)
        log = Path(job.paths.stderr)
        said = str(err).strip().splitlines()[-1:] or [type(err).__name__]
        if log.is_file():
            cause = failure_cause(log.read_text(errors="replace")) or said[0]
            where = f"log: {log}"
        else:
            cause = said[0]
            where = f"log: {log} is missing (the job wrote none: it failed before Python started)"
        print(f"tables: FAILED {label}: {cause}\n  {where}", file=sys.stderr)
        return "Failed"


def pull_experiments(config: ClusterConfig, baseline: str, names: list[str]) -> list[str]:
    """Fetch the experiments ``names`` whose results hold at ``baseline`` from the git remote
    (their git refs only, as ``dvc exp pull --no-cache``: the tables read the committed
    metrics and predictions), including those of an earlier commit with the same stage
    inputs.

    Returns:
        The names pulled.
    """
    found = reusable_at_remote(config.git_remote, baseline)
    refs = sorted(found[name][0] for name in set(names) & set(found))
    if refs:
        git("fetch", "-q", "--no-tags", config.git_remote, *(f"+{ref}:{ref}" for ref in refs))
    print(f"tables: pulled {len(refs)} of {len(names)} experiments from {config.git_remote}")
    return sorted(set(names) & set(found))


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
        require_clean_head()
        served = served_by(cells.values())
        status = run_jobs(experiments, labels, config, kind, head(), jobs, alternatives=served)
        failed = sorted(name for name, state in status.items() if state == "Failed")
    pull_experiments(config, head(), wanted_names(list(cells.values())))
    return failed
