"""Resuming a training stage killed after epoch k: same checkpoint, metrics and log."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline.models.base import AVELModel
from pipeline.objectives import Supervised
from pipeline.params import load_params
from pipeline.resume import ResumeFile, fingerprint, rng_state, set_rng_state
from pipeline.train import Trainer, fit, make_optimizer, make_scheduler
from stages import augment, database, train
from tests.conftest import train_config

ROOT = Path(__file__).resolve().parents[1]
EPOCHS, KILLED_AFTER = 4, 2

# Runs a training stage and kills itself with SIGKILL right after the resume state of
# epoch argv[2] is written (argv[2] = 0: never), like a machine dying mid-run.
KILLER = """
import os, signal, sys
from pipeline import resume
save = resume.ResumeFile.save
def save_then_die(self, state):
    save(self, state)
    if state["epoch"] == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
resume.ResumeFile.save = save_then_die
from pipeline.models.base import AVELModel
from pipeline.objectives import Supervised
from pipeline.params import load_params
from stages.train import main
main(load_params(), sys.argv[1])
"""


def test_fingerprint_follows_params_and_file_content(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.npz").write_bytes(b"one")
    first = fingerprint({"lr": 0.1}, [data])
    assert fingerprint({"lr": 0.1}, [data]) == first
    assert fingerprint({"lr": 0.2}, [data]) != first
    (data / "a.npz").write_bytes(b"two")
    assert fingerprint({"lr": 0.1}, [data]) != first
    assert fingerprint({"lr": 0.1}, [tmp_path / "absent"]) != fingerprint({"lr": 0.1}, [])


def test_resume_file_ignores_other_runs_once_and_is_removed(tmp_path, capsys):
    path = tmp_path / ".resume" / "sel.pt"
    ResumeFile(path, "run-a").save({"epoch": 3, "weights": torch.arange(4)})
    saved = ResumeFile(path, "run-a").load()
    assert saved["epoch"] == 3 and torch.equal(saved["weights"], torch.arange(4))
    assert ResumeFile(path, "run-b").load() is None
    out = capsys.readouterr().out
    assert out.count("resume state of other params or data ignored") == 1
    path.write_bytes(b"not a checkpoint")
    assert ResumeFile(path, "run-a").load() is None
    assert "unreadable resume state ignored" in capsys.readouterr().out
    ResumeFile(path, "run-a").remove()
    assert not path.parent.exists()


def test_rng_state_round_trip():
    state = rng_state()
    drawn = (random.random(), np.random.random(), torch.rand(3))  # noqa: NPY002
    set_rng_state(state)
    again = (random.random(), np.random.random(), torch.rand(3))  # noqa: NPY002
    assert drawn[:2] == again[:2] and torch.equal(drawn[2], again[2])


def test_resume_state_is_ignored_by_git_and_dvc():
    assert "/.resume/" in (ROOT / ".gitignore").read_text().splitlines()
    assert ".resume/" in (ROOT / ".dvcignore").read_text().splitlines()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_store, tiny_pooled) -> Path:
    """A pipeline directory with the tiny store, its pooled features, databases and
    augmentations."""
    root = tmp_path_factory.mktemp("resume")
    shutil.copytree(tiny_store, root / "data" / "ave")
    shutil.copytree(tiny_pooled, root / "data" / "pooled")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"].update({"hidden": 8, "blocks": 2})
    params["train"].update({"epochs": EPOCHS, "batch_size": 16, "device": "cpu"})
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    cwd = Path.cwd()
    os.chdir(root)
    try:
        database.main()
        augment.main(params)
    finally:
        os.chdir(cwd)
    return root


def _train(cwd: Path, task: str, kill_after: int) -> subprocess.CompletedProcess:
    """Run the stage in a subprocess that kills itself after epoch ``kill_after``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1"}
    command = [sys.executable, "-c", KILLER, task, str(kill_after)]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)


def _train_here(cwd: Path, task: str, monkeypatch) -> None:
    """Run the stage to the end in this process."""
    with monkeypatch.context() as patch:
        patch.chdir(cwd)
        train.main(load_params(), task)


def _outputs(cwd: Path, task: str) -> dict[str, object]:
    """Every training output: checkpoint tensors and meta, metrics and the dvclive files."""
    saved = torch.load(cwd / "data" / "models" / f"{task}.pt", weights_only=True)
    logs = cwd / "metrics" / "train_log" / task
    files = {str(p.relative_to(logs)): p.read_bytes() for p in sorted(logs.rglob("*.*"))}
    return {
        "state": saved.pop("state"),
        "meta": saved,
        "metrics": (cwd / "metrics" / "train" / f"{task}.json").read_bytes(),
        "log": files,
    }


@pytest.mark.parametrize("task", ["sel", "wsel"])
def test_a_stage_killed_after_epoch_k_resumes_and_ends_bit_identical(
    workdir, tmp_path, task, monkeypatch, capsys
):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    for target in (whole, broken):
        shutil.copytree(workdir, target)
    _train_here(whole, task, monkeypatch)
    killed = _train(broken, task, kill_after=KILLED_AFTER)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    state = broken / ".resume" / f"{task}.pt"
    assert torch.load(state, weights_only=True)["epoch"] == KILLED_AFTER
    capsys.readouterr()
    _train_here(broken, task, monkeypatch)
    assert f"resuming after epoch {KILLED_AFTER}" in capsys.readouterr().out
    assert not (broken / ".resume").exists()  # removed on success
    expected, found = _outputs(whole, task), _outputs(broken, task)
    assert found["meta"] == expected["meta"]
    assert found["metrics"] == expected["metrics"]
    assert found["log"] == expected["log"]  # dvclive's files, byte for byte
    assert set(found["state"]) == set(expected["state"])
    for key, tensor in expected["state"].items():
        assert torch.equal(found["state"][key], tensor), key
    assert json.loads(expected["log"]["metrics.json"])["step"] == EPOCHS
    assert expected["log"]["plots/metrics/lr.tsv"].decode().startswith("step\tlr\n")


def test_a_resume_state_of_other_params_is_ignored(workdir, tmp_path, monkeypatch, capsys):
    other = tmp_path / "other"
    shutil.copytree(workdir, other)
    ResumeFile(other / ".resume" / "wsel.pt", "another run").save({"epoch": 3})
    _train_here(other, "wsel", monkeypatch)
    out = capsys.readouterr().out
    assert out.count("resume state of other params or data ignored") == 1
    assert "resuming" not in out
    log = other / "metrics" / "train_log" / "wsel" / "plots" / "metrics" / "lr.tsv"
    assert [line.split("\t")[0] for line in log.read_text().splitlines()] == [
        "step",
        *map(str, range(1, EPOCHS + 1)),
    ]
    assert not (other / ".resume").exists()


class _Table(AVELModel):
    """Scores from a learnable table, whatever the input."""

    def __init__(self):
        super().__init__()
        self.table = torch.nn.Parameter(torch.zeros(2, 29))

    def forward(self, audio, visual):
        return self.table.expand(audio.shape[0], 2, 29)


class _Batches(list):
    def __init__(self, batches, labels):
        super().__init__(batches)
        self.dataset = type("D", (), {"labels": labels})()


def test_resume_states_are_written_every_k_epochs(tmp_path):
    labels = torch.tensor([[3, 28]])
    batch = {"audio": torch.zeros(1, 2, 1), "visual": torch.zeros(1, 2, 1), "labels": labels}
    batch["index"] = torch.tensor([0])
    loader = _Batches([batch], labels.numpy())
    model = _Table()
    config = train_config(optimizer="sgd", lr=1.0, scheduler="constant", epochs=5)
    optimizer = make_optimizer(config, model.parameters())
    scheduler = make_scheduler(config, optimizer)
    trainer = Trainer(model, Supervised(), optimizer, scheduler, torch.device("cpu"))
    state = ResumeFile(tmp_path / "wsel.pt", "run")
    fit(trainer, loader, loader, 5, resume=state, resume_every=2)
    assert state.load()["epoch"] == 4  # the last even epoch
