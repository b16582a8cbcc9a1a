"""What the deterministic CPU mode (``train.deterministic_cpu``, :mod:`pipeline.cpu`) costs,
and whether it gives the same bytes under different outer settings.

Builds a synthetic store (``--videos`` training videos, the official feature sizes), its
pooled features, databases and replicas, then runs ``python -m stages.train sel`` (DPNet,
the default params with ``--epochs``) as a fresh process, pinned and not, each under two
outer environments (``OMP_NUM_THREADS`` / ``ATEN_CPU_CAPABILITY`` as a machine or a user
might set them). Prints the wall time of each run and a hash of its checkpoint and metrics.

Usage, from the repository root::

    python -m bench.deterministic_cpu [--videos 200] [--epochs 3]
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pipeline.data.pooled import pool_store
from pipeline.data.synthetic import generate_synthetic

ROOT = Path(__file__).resolve().parents[1]
OUTER = {
    "machine default": {},
    "OMP_NUM_THREADS=1, ATEN_CPU_CAPABILITY=avx2": {
        "OMP_NUM_THREADS": "1",
        "ATEN_CPU_CAPABILITY": "avx2",
    },
}


def _prepare(root: Path, videos: int, epochs: int) -> None:
    generate_synthetic(root / "data" / "ave", n_train=videos, n_val=40, n_test=40)
    pool_store(root / "data" / "ave", root / "data" / "pooled")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update({"epochs": epochs, "device": "cpu"})
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1"}
    for stage in ("database", "augment"):
        subprocess.run([sys.executable, "-m", f"stages.{stage}"], cwd=root, env=env, check=True)


def _run(base: Path, work: Path, deterministic: bool, outer: dict) -> tuple[float, str]:
    shutil.copytree(base, work)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["train"]["deterministic_cpu"] = deterministic
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1", **outer}
    start = time.perf_counter()
    command = [sys.executable, "-m", "stages.train", "sel"]
    subprocess.run(command, cwd=work, env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    digest = hashlib.sha256()
    for path in ("data/models/sel.pt", "metrics/train/sel.json"):
        digest.update((work / path).read_bytes())
    return seconds, digest.hexdigest()[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        _prepare(base, args.videos, args.epochs)
        print(f"train@sel, DPNet, {args.videos} training videos, {args.epochs} epochs")
        print("| deterministic_cpu | outer environment | seconds | checkpoint + metrics |")
        print("|---|---|---:|---|")
        for i, deterministic in enumerate((True, False)):
            for j, (name, outer) in enumerate(OUTER.items()):
                seconds, digest = _run(base, Path(tmp) / f"run{i}{j}", deterministic, outer)
                print(f"| {deterministic} | {name} | {seconds:.1f} | `{digest}` |", flush=True)


if __name__ == "__main__":
    main()
