"""The tables' experiments as submitit jobs: cluster options, the pushed-ref check, claims,
failure causes, a tiny table through the local executor and, where ``sinfo`` exists, through
a real SLURM.

Every end-to-end test runs the shipped ``cluster.yaml`` with only its paths overridden (on
SLURM also the partition and :data:`CI_NODE`). They run the tiny table of
``tests/experiments/test_tables.py`` (2 rows x 2 seeds) as jobs that clone a bare git
remote, run in node-local scratch with a shared DVC cache, push to the git remote and a DVC
remote directory, and are rendered from there; a second submission, a commit of the render
and a README-only commit submit nothing. The SLURM tests run the same table's seed 0 through
``sbatch`` arrays with their own remote and cache and check that it makes the same
evaluations for seed 0, and signal a training job so that it is requeued and resumes.
"""

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.experiments import claims, cluster
from pipeline.experiments.ablations import Cell, Experiment, load_ablations, plan
from pipeline.experiments.claims import Claims
from pipeline.experiments.cluster import (
    ExperimentJob,
    _Waiter,
    failure_cause,
    load_cluster,
    remote_experiments,
    require_on_remote,
    run_jobs,
    wanted_names,
)
from pipeline.experiments.reuse import inputs_key, refs_prefix
from tests.experiments.test_tables import _accuracy, _tables
from tests.test_e2e import _git, _run

ROOT = Path(__file__).resolve().parents[2]


def _bare(path: Path) -> Path:
    _run(["git", "init", "-q", "--bare", str(path)], path.parent)
    return path


PATHS = ("git_remote", "dvc_remote", "cache_dir", "resume_dir", "scratch", "logs")
# The single-node SLURM of CI (.ci/slurm_up.sh) has no GPU and 2 CPUs: the shipped requests
# (1 GPU, 8 CPUs, 32 GB) cannot be scheduled there, so these, like the partition, are the node's.
CI_NODE = {"gpus_per_job": 0, "cpus_per_job": 1, "mem_gb": 1.0}


def _config(tmp: Path, remote: Path, tag: str, slurm: dict | None = None, **changes) -> Path:
    """The shipped ``cluster.yaml`` with only its paths (and, for SLURM, the partition and
    :data:`CI_NODE`) overridden, checking every second instead of five, plus ``changes``:
    for ``remote``, with its own DVC remote, cache, resume states, scratch and logs; the
    cache starts as a copy of ``cache-data`` (the data stages only) where that exists."""
    if (tmp / "cache-data").is_dir():
        shutil.copytree(tmp / "cache-data", tmp / f"cache-{tag}")
    data = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    data.update({key: str(tmp / f"{key}-{tag}") for key in PATHS})
    data.update(git_remote=str(remote), cache_dir=str(tmp / f"cache-{tag}"), poll_s=1, **changes)
    data["slurm"].update(slurm or {})
    path = tmp / f"cluster-{tag}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _venv(repo: Path) -> None:
    """``repo/.venv``, for the shipped ``setup`` line: this interpreter's virtual environment,
    or one whose ``activate`` puts this interpreter first on the ``PATH``."""
    if (repo / ".git").is_dir():
        with open(repo / ".git" / "info" / "exclude", "a") as exclude:
            exclude.write("/.venv\n")
    prefix = Path(sys.prefix)
    if (prefix / "bin" / "activate").is_file():
        (repo / ".venv").symlink_to(prefix)
        return
    (repo / ".venv" / "bin").mkdir(parents=True)
    line = f'PATH="{Path(sys.executable).parent}:$PATH"; export PATH\n'
    (repo / ".venv" / "bin" / "activate").write_text(line)


def test_the_shipped_cluster_file_is_valid_and_its_setup_is_posix_sh(tmp_path):
    config = load_cluster(ROOT / "cluster.yaml")
    assert config.slurm.gpus_per_job == 1 and config.slurm.array_parallelism >= 1
    assert config.resume_dir is not None  # preempted jobs resume (docs/cluster.md)
    # the local executor runs the setup lines with /bin/sh (dash on Debian): they must work there
    _venv(tmp_path)
    script = " && ".join([*config.setup, "command -v python"])
    found = subprocess.run(["/bin/sh", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()).parent.parent.resolve() == (tmp_path / ".venv").resolve()
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**yaml.safe_load((ROOT / "cluster.yaml").read_text()),
                                   "setup": ["source .venv/bin/activate"]}))  # fmt: skip
    with pytest.raises(PipelineError, match=r"setup: .*`source` is not POSIX sh .* `\. FILE`"):
        load_cluster(bad)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dvc_remote": "/s", "cache_dir": "/c"}, r"cluster.yaml: git_remote: Field required"),
        (
            {"git_remote": "/g", "dvc_remote": "/s", "cache_dir": "/c", "colour": 1},
            r"cluster.yaml: colour: Extra inputs are not permitted",
        ),
        (
            {"git_remote": "/g", "dvc_remote": "/s", "cache_dir": "/c", "slurm": {"time_min": 0}},
            r"cluster.yaml: slurm.time_min: Input should be greater than or equal to 1",
        ),
    ],
)
def test_cluster_file_errors_name_the_key(tmp_path, data, message):
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PipelineError, match=message):
        load_cluster(path)
    with pytest.raises(PipelineError, match="cluster options not found"):
        load_cluster(tmp_path / "absent.yaml")


def _commit(repo: Path, message: str) -> str:
    """Commit ``file`` holding ``message`` (the first time with a ``dvc.yaml`` and params)."""
    if not (repo / "dvc.yaml").exists():
        (repo / "dvc.yaml").write_text("stages: {}\n")
        (repo / "params.yaml").write_text("a: 1\n")
    (repo / "file").write_text(message)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", message)
    return _run(["git", "rev-parse", "HEAD"], repo).stdout.strip()


def test_a_pushed_experiment_is_checked_at_the_remote(tmp_path, monkeypatch):
    repo, remote = tmp_path / "repo", _bare(tmp_path / "remote.git")
    repo.mkdir()
    _git(repo, "init", "-q")
    base = _commit(repo, "base")
    ours, theirs = _commit(repo, "ours"), _commit(repo, "theirs")
    config = load_cluster(_config(tmp_path, remote, "t"))
    job = ExperimentJob(config, base)
    ref = f"refs/exps/{base[:2]}/{base[2:]}/abl-x"
    with pytest.raises(PipelineError, match="exited 0 but the git remote has no ref"):
        job._check_pushed("abl-x", ours)
    _git(repo, "push", "-q", str(remote), f"{theirs}:{ref}")
    # a concurrent run pushed the same experiment first: theirs serves, ours is no failure
    assert job._check_pushed("abl-x", ours) == theirs
    assert remote_experiments(str(remote), base) == {"abl-x": theirs}
    assert job._check_pushed("abl-x", theirs) == theirs
    # a (re)started job whose experiment is already there runs nothing and pushes nothing
    assert job("abl-x", ["no-such-command"]) == theirs
    monkeypatch.delenv("AVEL_UNSET", raising=False)
    unset = ExperimentJob(config.model_copy(update={"scratch": "$AVEL_UNSET/x"}), base)
    with pytest.raises(PipelineError, match=r"scratch '\$AVEL_UNSET/x' .* expected an absolute"):
        unset("abl-y", ["no-such-command"])
    # the jobs clone the baseline from the remote: it must be on a branch there
    monkeypatch.chdir(repo)
    with pytest.raises(PipelineError, match="on no branch of the git remote .* push it first"):
        require_on_remote(base, str(remote))
    _git(repo, "push", "-q", str(remote), f"{ours}:refs/heads/main")
    require_on_remote(base, str(remote))  # an ancestor of the branch's tip is enough


def _pushed_repo(tmp_path: Path, monkeypatch) -> tuple[Path, Path, str, object]:
    """A one-commit repository (the working directory) pushed to a bare remote, and the
    shipped cluster file pointed at it: (repo, remote, its commit, the loaded config)."""
    repo, remote = tmp_path / "repo", _bare(tmp_path / "remote.git")
    repo.mkdir()
    _git(repo, "init", "-q")
    base = _commit(repo, "base")
    _git(repo, "push", "-q", str(remote), f"{base}:refs/heads/main")
    monkeypatch.chdir(repo)
    return repo, remote, base, load_cluster(_config(tmp_path, remote, "t"))


def test_an_alternative_at_the_remote_stands_in_for_the_experiment_and_is_pulled(
    tmp_path, monkeypatch
):
    # `run tlr-t5` after `run tlr-t3 tlr-t5` on the cluster: the shared AVE rows were made
    # under a wider selection, with another name; they must not be submitted again
    repo, remote, base, config = _pushed_repo(tmp_path, monkeypatch)
    ave = (("model.name", "ave"),)
    narrow, other = (Experiment(ave, seed, ("evaluate@wsel",)) for seed in (0, 1))
    wide = Experiment(ave, 0, ("evaluate@wsel", "evaluate@wsel_refined"))
    _git(repo, "push", "-q", str(remote), f"{base}:refs/exps/{base[:2]}/{base[2:]}/{wide.name}")
    submitted: list[str] = []

    def finished_jobs(executor, job, items, kind, jobs, poll, tick):
        submitted.extend(name for name, _ in items)
        return iter(())

    monkeypatch.setattr(cluster, "make_executor", lambda *args: None)
    monkeypatch.setattr(cluster, "_finished_jobs", finished_jobs)
    labels = {narrow.name: "narrow", other.name: "other"}
    status = run_jobs([narrow, other], labels, config, "local", base, alternatives={})
    assert status == {} and submitted == [narrow.name, other.name]
    submitted.clear()
    served = {narrow.name: (wide,), other.name: ()}
    status = run_jobs([narrow, other], labels, config, "local", base, alternatives=served)
    assert status == {narrow.name: "at remote"} and submitted == [other.name]
    cells = [Cell(narrow, "wsel", "model", (wide,)), Cell(other, "wsel", "model")]
    assert wanted_names(cells) == sorted([narrow.name, wide.name, other.name])
    # its claims were released: no other run is kept waiting for them
    assert Claims(str(remote), inputs_key(base)).read() == {}


def test_a_second_run_waits_for_the_experiments_another_run_claims(tmp_path, monkeypatch, capsys):
    repo, remote, base, config = _pushed_repo(tmp_path, monkeypatch)
    made, dropped, ours = (Experiment((("x", str(i)),), 0, ("t",)) for i in range(3))
    labels = {e.name: f"tiny/{e.name} seed 0" for e in (made, dropped, ours)}
    # another run holds two claims; a third claim of it has expired and is taken over
    other = Claims(str(remote), inputs_key(base))
    assert other.take([made.name, dropped.name]) == {}
    stale = Claims(str(remote), inputs_key(base), ttl_min=1e-6)
    assert stale.take([ours.name]) == {}
    submitted: list[str] = []

    def finished_jobs(executor, job, items, kind, jobs, poll, tick):
        submitted.extend(name for name, _ in items)
        return iter(())

    def other_run_works(seconds):  # while we wait: it pushes one experiment, drops the other
        _git(repo, "push", "-q", str(remote), f"{base}:{refs_prefix(base)}{made.name}")
        other.release([made.name, dropped.name])

    monkeypatch.setattr(cluster, "make_executor", lambda *args: None)
    monkeypatch.setattr(cluster, "_finished_jobs", finished_jobs)
    monkeypatch.setattr(cluster.time, "sleep", other_run_works)
    status = run_jobs([made, dropped, ours], labels, config, "local", base)
    assert submitted == [ours.name]
    assert status == {made.name: "by another run", dropped.name: "Failed"}
    out = capsys.readouterr()
    assert "2 of them claimed by another run, waiting for them:" in out.out
    assert f"{labels[made.name]}: claimed by " in out.out
    assert f"NOT DONE {labels[dropped.name]}: the run that claimed it ended without it" in out.err
    assert Claims(str(remote), inputs_key(base)).read() == {}  # ours released too


def test_a_claim_is_won_by_one_run_renewed_and_released(tmp_path, monkeypatch):
    repo, remote = tmp_path / "repo", _bare(tmp_path / "remote.git")
    repo.mkdir()
    _git(repo, "init", "-q")
    monkeypatch.chdir(repo)
    first, second = Claims(str(remote), "k"), Claims(str(remote), "k")
    assert first.take(["a", "b"]) == {}
    theirs = second.take(["b", "c"])
    assert set(theirs) == {"b"} and not theirs["b"].expired()
    assert set(first.held) == {"a", "b"} and set(second.held) == {"c"}
    before = first.read()["a"]
    first.renewed = 0.0  # a third of the lifetime has passed
    monkeypatch.setattr(claims.time, "time", lambda: before.expires - 60)
    first.renew()
    assert first.read()["a"].expires > before.expires
    first.release(["a", "b"])
    assert set(first.read()) == {"c"}
    second.release(["b"])  # not ours: nothing happens
    assert set(first.read()) == {"c"}


def test_a_failure_line_gives_the_cause_not_the_wrappers():
    stderr = """submitit INFO (2026-12-05 10:00:00,000) - Starting with JobEnvironment(...)
+ python -m dvc exp run -n abl-1 evaluate@sel
error: params.yaml: device 'cuda' requested but CUDA is not available
ERROR: failed to reproduce 'train@sel': failed to run: python -m stages.train sel, exited with 1
submitit ERROR (2026-12-05 10:00:01,000) - Submitted job triggered an exception
Traceback (most recent call last):
  File "x.py", line 1, in <module>
pipeline.errors.PipelineError: python -m dvc exp run failed (its output is above in this log)
"""
    cause = "error: params.yaml: device 'cuda' requested but CUDA is not available"
    assert failure_cause(stderr) == cause
    assert failure_cause("/bin/sh: 1: source: not found\n") == "/bin/sh: 1: source: not found"
    assert failure_cause("ok\nValueError: bad\n") == "ValueError: bad"
    assert failure_cause("all went well\n") is None


# ------------------------------------------------------------------------- end to end


def _rendered_means(text: str) -> dict[str, str]:
    return {
        row: re.search(rf"\(`{row}`\) \| \*\*([\d.]+)\*\*", text).group(1)
        for row in ("base", "rep")
    }


@pytest.fixture(scope="module")
def local_table(project) -> tuple[Path, str]:
    """The tiny table run by the local executor: (cluster file, rendered markdown)."""
    tmp = project.parent
    config = _config(tmp, tmp / "remote.git", "local")
    started = time.monotonic()
    out = _tables(project, "run", "tiny", "--seeds", "2", "--executor", "local",
                  "--cluster", str(config), "--jobs", "2")  # fmt: skip
    print(f"local executor, 4 experiments: {time.monotonic() - started:.0f} s")
    assert "0 experiments at the remote, 4 to submit (local)" in out.stdout
    return config, (project / "reports" / "tables" / "tiny.md").read_text()


@pytest.mark.e2e
def test_local_jobs_push_to_the_remotes_and_resubmitting_submits_nothing(project, local_table):
    config_path, text = local_table
    config = load_cluster(config_path)
    head = _run(["git", "rev-parse", "HEAD"], project).stdout.strip()
    at_remote = remote_experiments(config.git_remote, head)
    cells = plan(load_ablations(project / "ablations.yaml", project / "dvc.yaml").tables, [0, 1])
    names = {
        row: [cells[("tiny", row, s)].experiment.name for s in (0, 1)] for row in ("base", "rep")
    }
    assert set(at_remote) == {n for pair in names.values() for n in pair}
    # the rendered means are the experiments' own metrics, pulled from the remote
    for row, pair in names.items():
        mean = sum(_accuracy(project, at_remote[n]) for n in pair) / 2
        assert _rendered_means(text)[row] == f"{100 * mean:.1f}"
    # the outputs went to the shared cache and the DVC remote, not to the project's cache
    assert any(Path(config.cache_dir).rglob("*")) and any(Path(config.dvc_remote).rglob("*"))
    assert not (project / ".dvc" / "cache").exists()
    assert not any(Path(config.scratch).iterdir())  # each job removed its clone
    logs = [path.read_text() for path in Path(config.logs).glob("*_log.out")]
    assert len(logs) == 4  # the data stages came from the shared cache, training ran
    assert all(
        "Stage 'pool' didn't change" in log and "> python -m stages.train" in log for log in logs
    )
    run = ["run", "tiny", "--seeds", "2", "--executor", "local", "--cluster", str(config_path)]
    # run again: the render changed the workspace, which does not block the run
    assert "4 experiments at the remote, 0 to submit" in _tables(project, *run).stdout
    # commit the render, then a README edit: the experiments of the first commit still hold
    _git(project, "add", "reports/tables")
    _git(project, "commit", "-qm", "the rendered table")
    assert "4 experiments at the remote, 0 to submit" in _tables(project, *run).stdout
    (project / "README.md").write_text("a README edit\n")
    _git(project, "add", "README.md")
    _git(project, "commit", "-qm", "README only")
    assert "4 experiments at the remote, 0 to submit" in _tables(project, *run).stdout
    assert (project / "reports" / "tables" / "tiny.md").read_text() == text
    _git(project, "push", "-q", config.git_remote, "HEAD:refs/heads/main")
    # render elsewhere: a fresh clone pulls the experiments from the remote and renders them
    clone = project.parent / "render-clone"
    _run(["git", "clone", "-q", "-b", "main", config.git_remote, str(clone)], project.parent)
    rendered = _tables(clone, "render", "tiny", "--seeds", "2", "--executor", "local",
                       "--cluster", str(config_path))  # fmt: skip
    assert "pulled 4 of 4 experiments" in rendered.stdout
    assert (clone / "reports" / "tables" / "tiny.md").read_text() == text


@pytest.mark.e2e
def test_a_failed_job_is_reported_by_name_with_its_log(project, tmp_path, monkeypatch):
    remote = _bare(tmp_path / "other.git")
    _git(project, "push", "-q", str(remote), "HEAD:refs/heads/main")
    # an option DVC rejects: every job fails while preparing its clone
    config = _config(tmp_path, remote, "bad", dvc_config={"core.colour": "red"})
    args = ["run", "tiny", "--seeds", "1", "--executor", "local", "--cluster", str(config)]
    result = _run(
        [sys.executable, "-m", "pipeline.experiments.tables", *args, "--jobs", "2"], project, False
    )
    assert result.returncode == 1
    assert "2 jobs failed (listed above with their logs)" in result.stderr
    cells = plan(load_ablations(project / "ablations.yaml", project / "dvc.yaml").tables, [0])
    name = cells[("tiny", "base", 0)].experiment.name
    # the cause (DVC's complaint, from the job's stderr), the rows and seed, the log
    line = re.search(
        rf"FAILED tiny/base seed 0 \({name}\): (ERROR: .*colour.*)\n  log: (\S+)\n",
        result.stderr,
    )
    assert line, result.stderr
    log = Path(line.group(2))
    assert log.is_file() and line.group(1) in log.read_text()
    assert "dvc config --local core.colour red" in log.with_suffix(".out").read_text()
    monkeypatch.chdir(project)
    head = _run(["git", "rev-parse", "HEAD"], project).stdout.strip()
    assert remote_experiments(str(remote), head) == {}
    assert Claims(str(remote), inputs_key(head)).read() == {}  # released: rerunning resubmits
    # a job that fails before Python starts writes no log: the line says so
    config = _config(tmp_path, remote, "nolog", setup=["no-such-setup-command"])
    args = ["run", "tiny", "--seeds", "1", "--executor", "local", "--cluster", str(config)]
    result = _run([sys.executable, "-m", "pipeline.experiments.tables", *args], project, False)
    assert result.returncode == 1
    assert "no-such-setup-command: not found" in result.stderr  # the shell's own message
    line = re.search(
        rf"FAILED tiny/base seed 0 \({name}\): .*\n  log: (\S+) is missing \(", result.stderr
    )
    assert line and not Path(line.group(1)).exists(), result.stderr


# ------------------------------------------------------------------------- SLURM


def _ci_node() -> dict:
    """The SLURM options the CI node needs: its partition and :data:`CI_NODE`."""
    partition = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True)
    return {"partition": partition.stdout.split()[0].rstrip("*"), **CI_NODE}


def _evaluation(repo: Path, commit: str) -> str:
    return _run(["git", "show", f"{commit}:metrics/evaluate/sel.json"], repo).stdout


def _experiments(git_remote: str) -> dict[str, str]:
    """Name -> commit of every experiment at ``git_remote``, of any baseline."""
    listed = _run(
        ["git", "ls-remote", "--refs", git_remote, "refs/exps/*"], Path(git_remote).parent
    ).stdout
    assert listed, f"no experiment at {git_remote}"
    return {ref.rsplit("/", 1)[1]: sha for sha, ref in map(str.split, listed.splitlines())}


@pytest.mark.e2e
def test_the_table_through_slurm_arrays_renders_the_local_numbers(slurm, project, local_table):
    tmp = project.parent
    # a fresh remote, clone and cache: the SLURM jobs run seed 0's experiments again
    remote = _bare(tmp / "slurm.git")
    _git(project, "push", "-q", str(remote), "HEAD:refs/heads/main")
    clone = tmp / "slurm-clone"
    _run(["git", "clone", "-q", "-b", "main", str(remote), str(clone)], tmp)
    _venv(clone)
    config = _config(tmp, remote, "slurm", slurm=_ci_node())
    run = ["run", "tiny", "--seeds", "1", "--executor", "slurm", "--cluster", str(config)]
    started = time.monotonic()
    out = _tables(clone, *run)
    print(f"SLURM, 2 experiments: {time.monotonic() - started:.0f} s")
    assert "0 experiments at the remote, 2 to submit (slurm)" in out.stdout
    # the same evaluation, byte for byte, as the local executor's seed-0 experiments
    by_slurm = _experiments(str(remote))
    by_local = _experiments(load_cluster(local_table[0]).git_remote)
    assert len(by_slurm) == 2 and set(by_slurm) <= set(by_local), (by_slurm, by_local)
    for name, commit in by_slurm.items():
        assert _evaluation(clone, commit) == _evaluation(project, by_local[name])
    logs = list(Path(load_cluster(config).logs).rglob("*_log.out"))
    assert len(logs) == 2 and all("pushed and found at" in p.read_text() for p in logs)
    assert "2 experiments at the remote, 0 to submit" in _tables(clone, *run).stdout


def test_a_job_runs_the_experiment_in_its_clone_not_through_the_queue():
    experiment = Experiment((("augment.link", "false"),), 1, ("evaluate@sel",))
    assert experiment.command(queue=False) == [
        "exp", "run", "-n", experiment.name,
        "-S", "++augment.link=false", "-S", "++train.seed=1", "evaluate@sel",
    ]  # fmt: skip
    assert experiment.command() == ["exp", "run", "--queue", *experiment.command(False)[2:]]


class _Job:
    def __init__(self, job_id: str, done: bool) -> None:
        self.job_id, self._done = job_id, done

    def done(self) -> bool:
        return self._done


def test_a_slurm_job_gone_from_the_queue_without_a_result_counts_as_finished(monkeypatch):
    # without accounting sacct cannot say that a job died; squeue can say it left the queue
    queue = {"7_0", "7_1"}
    monkeypatch.setattr("pipeline.experiments.cluster._in_queue", lambda: set(queue))
    waiter = _Waiter("slurm")
    finished, dead, running = _Job("7_2", True), _Job("7_3", False), _Job("7_0", False)
    jobs = [finished, dead, running]
    assert waiter.finished(jobs) == [finished]  # 7_3 left the queue: once may be a race
    assert waiter.finished(jobs) == [finished, dead]  # twice: it ended without a result
    queue.clear()
    assert waiter.finished([running]) == []
    assert waiter.finished([running]) == [running]
