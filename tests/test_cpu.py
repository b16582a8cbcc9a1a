"""Deterministic CPU mode (pipeline.cpu): pinned before torch loads, same bytes whatever the
caller's environment says."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.cpu import PINNED, cpu_model, pin, wanted
from pipeline.errors import PipelineError
from stages import augment, database

ROOT = Path(__file__).resolve().parents[1]
# what a careless or different machine would set before running a stage
OUTER = [
    {"OMP_NUM_THREADS": "2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AUTO"},
    {"OMP_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "ALL"},
]
PROBE = (
    "import os, stages, torch; "
    "print(torch.backends.cpu.get_cpu_capability(), torch.get_num_threads(), "
    "os.environ.get('MKL_CBWR'), os.environ.get('ONEDNN_MAX_CPU_ISA'))"
)


def _params(path: Path, deterministic) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["deterministic_cpu"] = deterministic
    (path / "params.yaml").write_text(yaml.safe_dump(params))


def _python(cwd: Path, outer: dict, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1", **outer}
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_key_must_be_a_boolean(tmp_path):
    assert wanted(tmp_path / "absent.yaml") is False
    _params(tmp_path, "yes")
    with pytest.raises(PipelineError, match=r"train.deterministic_cpu: expected true or false"):
        wanted(tmp_path / "params.yaml")
    _params(tmp_path, True)
    assert wanted(tmp_path / "params.yaml") is True


def test_pin_changes_nothing_once_torch_is_loaded(tmp_path, monkeypatch):
    _params(tmp_path, True)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert "torch" in sys.modules and pin(tmp_path / "params.yaml") is False
    assert os.environ["ATEN_CPU_CAPABILITY"] == "avx2"


def test_a_stage_process_pins_over_the_outer_environment(tmp_path):
    _params(tmp_path, True)
    for outer in OUTER:
        capability, threads, cbwr, isa = _python(tmp_path, outer, "-c", PROBE).split()
        assert (capability, threads) == ("DEFAULT", "1")
        assert (cbwr, isa) == (PINNED["MKL_CBWR"], PINNED["ONEDNN_MAX_CPU_ISA"])
    _params(tmp_path, False)  # off: the outer environment decides
    capability, threads, cbwr, _ = _python(tmp_path, OUTER[0], "-c", PROBE).split()
    assert (capability, threads, cbwr) == ("AVX2", "2", "AUTO")


def _hashes(cwd: Path) -> dict[str, str]:
    files = [cwd / "data" / "models" / "sel.pt", cwd / "metrics" / "train" / "sel.json"]
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def _trained_base(tmp_path: Path, tiny_store, tiny_pooled, monkeypatch, deterministic) -> Path:
    base = tmp_path / "base"
    shutil.copytree(tiny_store, base / "data" / "ave")
    shutil.copytree(tiny_pooled, base / "data" / "pooled")
    _params(base, deterministic)
    params = yaml.safe_load((base / "params.yaml").read_text())
    params["model"].update({"hidden": 16, "blocks": 2})
    params["train"].update({"epochs": 2, "batch_size": 16, "device": "cpu"})
    (base / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(base)
    database.main()
    augment.main(params)
    return base


def _train(tmp_path: Path, base: Path, name: str, outer: dict) -> dict[str, str]:
    run = shutil.copytree(base, tmp_path / name)
    _python(run, outer, "-m", "stages.train", "sel")
    return _hashes(run)


def test_training_makes_the_same_bytes_under_different_outer_settings(
    tmp_path, tiny_store, tiny_pooled, monkeypatch
):
    base = _trained_base(tmp_path, tiny_store, tiny_pooled, monkeypatch, True)
    found = [_train(tmp_path, base, f"run{i}", outer) for i, outer in enumerate(OUTER)]
    assert found[0] == found[1]
    metrics = json.loads((tmp_path / "run0" / "metrics" / "train" / "sel.json").read_text())
    assert (metrics["cpu_kernels"], metrics["cpu_threads"]) == ("pinned", 1)
    assert metrics["cpu"] == cpu_model()


def test_unpinned_training_repeats_on_one_machine_with_the_same_threads(
    tmp_path, tiny_store, tiny_pooled, monkeypatch
):
    """The default mode's claim: the same machine and thread count give the same bytes."""
    base = _trained_base(tmp_path, tiny_store, tiny_pooled, monkeypatch, False)
    two = {"OMP_NUM_THREADS": "2"}
    assert _train(tmp_path, base, "first", two) == _train(tmp_path, base, "second", two)
    metrics = json.loads((tmp_path / "first" / "metrics" / "train" / "sel.json").read_text())
    assert (metrics["cpu_kernels"], metrics["cpu_threads"]) == ("native", 2)


@pytest.mark.parametrize(
    ("argv", "pinned"),
    [
        (["python", "-m", "stages.train", "sel"], True),
        (["python", "-m", "stages.download"], False),  # feature extraction: native kernels
        (["python", "-m", "stages.predict", "video.mp4"], False),
    ],
)
def test_feature_extraction_entry_points_are_not_pinned(tmp_path, monkeypatch, argv, pinned):
    _params(tmp_path, True)
    monkeypatch.delitem(sys.modules, "torch")  # as before a stage imports it
    monkeypatch.setattr(sys, "orig_argv", argv)
    for key in PINNED:
        monkeypatch.setenv(key, "outer")
    assert pin(tmp_path / "params.yaml") is pinned
    assert (os.environ["ATEN_CPU_CAPABILITY"] == "default") is pinned
