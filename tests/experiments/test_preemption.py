"""Preemption on a real one-node SLURM (``.ci/slurm_up.sh``): a training job signalled mid-run
is requeued and resumes from its shared resume state (docs/cluster.md).

Its own file, apart from ``test_cluster.py``, so that pytest-xdist's ``--dist loadfile``
runs it beside the other cluster tests instead of after them (fixtures: conftest.py).
"""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.experiments.cluster import load_cluster
from pipeline.experiments.reuse import remote_refs
from tests.experiments.test_cluster import _bare, _ci_node, _config, _venv
from tests.experiments.test_tables import TINY_TABLE, _tables
from tests.test_e2e import _git, _run

EPOCHS = 24  # long enough to signal the job between two epochs of its training


def _slow_table(repo: Path) -> Path:
    """One row, one experiment: the tiny table's ``base`` row trained for :data:`EPOCHS`."""
    table = json.loads(json.dumps(TINY_TABLE["tables"][0]))
    table.update(id="slow", rows=[table["rows"][0]])
    table["rows"][0]["overrides"] = {"augment.replicate": False, "train.epochs": EPOCHS}
    path = repo / "slow.yaml"
    path.write_text(yaml.safe_dump({"tables": [table]}, sort_keys=False))
    return path


def _remote_metrics(remote: Path) -> dict:
    ((sha, _),) = remote_refs(str(remote))
    show = ["git", "--git-dir", str(remote), "show", f"{sha}:metrics/evaluate/sel.json"]
    return json.loads(_run(show, remote).stdout)


def _start_when_held(job: str, submitting: subprocess.Popen, limit: float = 120) -> None:
    """Let the requeued ``job`` start now: SLURM holds a requeued batch job for about two
    minutes (reason ``BeginTime``), which the test need not wait out."""
    deadline = time.monotonic() + limit
    while submitting.poll() is None and time.monotonic() < deadline:
        reason = subprocess.run(["squeue", "-h", "-j", job, "-o", "%r"], capture_output=True,
                                text=True).stdout.strip()  # fmt: skip
        if reason == "BeginTime":
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
            return
        time.sleep(0.5)


@pytest.mark.e2e
def test_a_job_signalled_mid_training_is_requeued_and_resumes(slurm, project):
    tmp = project.parent
    remote = _bare(tmp / "preempt.git")
    _git(project, "push", "-q", str(remote), "HEAD:refs/heads/main")
    clone = tmp / "preempt-clone"
    _run(["git", "clone", "-q", "-b", "main", str(remote), str(clone)], tmp)
    _venv(clone)
    table = _slow_table(clone)
    config = _config(tmp, remote, "preempt", slurm=_ci_node())
    resume_dir = Path(load_cluster(config).resume_dir)
    run = ["run", "slow", "--seeds", "1", "--file", str(table), "--cluster", str(config)]
    command = [sys.executable, "-m", "pipeline.experiments.tables", *run, "--executor", "slurm"]
    submitting = subprocess.Popen(command, cwd=clone, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(resume_dir.rglob("sel.pt")):  # the training finished its first epoch
        assert submitting.poll() is None and time.monotonic() < deadline, "no resume state"
        time.sleep(0.1)
    jobs = subprocess.run(["squeue", "-h", "-o", "%i", "-n", "avel-tables"], capture_output=True,
                          text=True, check=True).stdout.split()  # fmt: skip
    assert len(jobs) == 1
    subprocess.run(["scancel", "--signal=USR2", jobs[0]], check=True)  # preemption's signal
    _start_when_held(jobs[0], submitting)
    out, _ = submitting.communicate(timeout=540)
    assert submitting.returncode == 0, out
    assert "0 experiments at the remote, 1 to submit (slurm)" in out
    log = "\n".join(p.read_text() for p in Path(load_cluster(config).logs).rglob("*_log.*"))
    resumed = re.findall(r"resuming after epoch (\d+)", log)
    assert len(resumed) == 1 and 1 <= int(resumed[0]) < EPOCHS, log  # fewer epochs than a run
    assert not list(resume_dir.rglob("*.pt"))  # removed once the outputs were written
    # an uninterrupted run of the same experiment, by the local executor: the same metrics
    reference = _bare(tmp / "uninterrupted.git")
    _git(project, "push", "-q", str(reference), "HEAD:refs/heads/main")
    config = _config(tmp, reference, "uninterrupted")
    _tables(clone, *run[:-1], str(config), "--executor", "local")
    assert _remote_metrics(remote) == _remote_metrics(reference)
