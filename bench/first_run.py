"""The first result's cost: the default ``dvc repro`` from an empty ``data/``, stage by stage.

Copies the repository's tracked files as they are in the working tree (uncommitted edits
included) into a fresh git repository, then runs every stage of ``dvc.yaml`` in the order
``dvc repro`` would, each as ``dvc repro --single-item STAGE`` in a process of its own, and
prints each stage's wall time and CPU time (user + system of the stage and its children,
DVC's own start included). It ends with ``dvc status``, which must list no stage but the
``always_changed`` ones: every stage ran.

The install is excluded. Run it on an idle machine for the wall figures; the CPU column is
what the load changes least. The table in ``docs/benchmarks.md`` comes from this script.

Usage, from the repository root::

    python -m bench.first_run [--keep DIR] [-S key=value ...]
"""

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pipeline.cpu import cpu_model

ROOT = Path(__file__).resolve().parents[1]


def copy_tracked(destination: Path) -> None:
    """Copy the working-tree state of every tracked file into a new git repository."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "b"],
    ):
        subprocess.run(command, cwd=destination, check=True)


def set_params(project: Path, overrides: list[str]) -> None:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to the copy's params.yaml."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for item in overrides:
        key, _, value = item.partition("=")
        *parents, leaf = key.split(".")
        section = params
        for part in parents:
            section = section[part]
        if leaf not in section:
            raise SystemExit(f"params.yaml: -S {item}: no key {key!r}")
        section[leaf] = yaml.safe_load(value)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def stage_names(project: Path, env: dict) -> list[str]:
    """The stages in the order ``dvc repro`` runs them (from ``dvc repro --dry --force``)."""
    dry = subprocess.run(
        ["dvc", "repro", "--dry", "--force"],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return re.findall(r"^Running stage '([^']+)':", dry, flags=re.MULTILINE)


def timed(command: list[str], project: Path, env: dict) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the children) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=project, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="run in this (new) directory and keep it")
    parser.add_argument("-S", dest="overrides", action="append", default=[], help="key=value")
    args = parser.parse_args()
    project = args.keep or Path(tempfile.mkdtemp(prefix="first_run_")) / "project"
    project.mkdir(parents=True)
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{Path(sys.executable).parent}:" + os.environ.get("PATH", ""),
    }
    copy_tracked(project)
    set_params(project, args.overrides)
    print(f"# {cpu_model()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at start")
    print("| stage | wall s | CPU s |\n|---|---:|---:|")
    total_wall = total_cpu = 0.0
    for stage in stage_names(project, env):
        wall, cpu = timed(["dvc", "repro", "--single-item", stage], project, env)
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        print(f"| {stage} | {wall:.1f} | {cpu:.1f} |", flush=True)
    print(f"| **total** | **{total_wall:.1f}** | **{total_cpu:.1f}** |")
    print(f"# load {os.getloadavg()[0]:.1f} at the end")
    status = json.loads(
        subprocess.run(
            ["dvc", "status", "--json"], cwd=project, env=env, check=True, capture_output=True
        ).stdout
    )
    stale = {stage: why for stage, why in status.items() if why != ["always changed"]}
    if stale:
        raise SystemExit(f"dvc status after the run is not clean: {stale}")
    if args.keep is None:
        shutil.rmtree(project.parent)


if __name__ == "__main__":
    main()
