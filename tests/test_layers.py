"""The import layering of docs/design.md §2: import-linter's contracts in pyproject.toml."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path, contract: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT), "--contract", contract, "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )


def test_no_import_runs_upward():
    result = _lint(ROOT, "layers")
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("contract", ["site-reads-tables", "experiments"])
def test_the_site_and_the_experiments_import_no_circle(contract):
    result = _lint(ROOT, contract)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        ("pipeline/losses.py", "from pipeline.training import loop\n"),  # models' losses
        ("pipeline/models/psp.py", "from pipeline.training import runner\n"),
        ("pipeline/evaluation/stats.py", "import pipeline.avvp.metrics\n"),
    ],
)
def test_an_upward_import_breaks_the_contract(tmp_path, module, upward):
    shutil.copytree(
        ROOT / "pipeline", tmp_path / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    assert _lint(tmp_path, "layers").returncode == 0
    path = tmp_path / module
    path.write_text(path.read_text() + upward)
    result = _lint(tmp_path, "layers")
    assert result.returncode != 0 and "BROKEN" in result.stdout


def test_the_cluster_importing_the_tables_command_breaks_the_experiments_contract(tmp_path):
    shutil.copytree(
        ROOT / "pipeline", tmp_path / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "pipeline" / "experiments" / "cluster.py"
    path.write_text(path.read_text() + "from pipeline.experiments import tables\n")
    result = _lint(tmp_path, "experiments")
    assert result.returncode != 0 and "BROKEN" in result.stdout
