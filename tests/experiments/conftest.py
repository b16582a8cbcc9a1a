"""Fixtures of the cluster tests (``test_cluster.py``, ``test_preemption.py``): the tiny
table's project pushed to a bare remote, and the one-node SLURM of ``.ci/slurm_up.sh``."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.experiments.test_cluster import _bare, _venv
from tests.experiments.test_tables import _tiny_repo
from tests.test_e2e import _dvc, _git

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The tiny table's repository with its data stages run once into ``cache-data`` (as the
    README's set-up does on the login node), pushed to a bare remote (``remote.git``)."""
    tmp = tmp_path_factory.mktemp("cluster")
    repo = _tiny_repo(tmp / "repo")
    _dvc(repo, "cache", "dir", "--local", str(tmp / "cache-data"))
    _dvc(repo, "repro", "pool", "database")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "data stages")
    _bare(tmp / "remote.git")
    _git(repo, "push", "-q", str(tmp / "remote.git"), "HEAD:refs/heads/main")
    _venv(repo)  # for the shipped setup line (`. .venv/bin/activate`)
    return repo


@pytest.fixture
def slurm():
    """Skip without SLURM's client; start the one-node SLURM of ``.ci/slurm_up.sh`` if it
    does not answer (root only; stopped again afterwards); fail if it still does not."""
    if shutil.which("sinfo") is None:
        pytest.skip("SLURM absent (no sinfo); CI installs it with .ci/slurm_up.sh")
    answers = subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0
    if not answers and os.geteuid() != 0:
        pytest.fail("sinfo is installed but SLURM does not answer (run .ci/slurm_up.sh as root)")
    if not answers:
        subprocess.run(["bash", str(ROOT / ".ci" / "slurm_up.sh")], check=True)
    yield
    if not answers:
        subprocess.run(["bash", str(ROOT / ".ci" / "slurm_down.sh")], check=True)
