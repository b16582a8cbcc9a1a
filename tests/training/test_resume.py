"""Resuming a training stage killed mid-epoch, after or during a state write: the epochs
run, the checkpoint, metrics and log."""

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

from pipeline.config.params import load_params
from pipeline.models.base import AVELModel
from pipeline.training.loop import Trainer, fit, make_optimizer, make_scheduler
from pipeline.training.objectives import Supervised
from pipeline.training.resume import ResumeFile, fingerprint, rng_state, set_rng_state
from stages import augment, database, refine, retrain, train
from tests.conftest import train_config

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 4

# Runs a training stage (argv: stage, task, mode, epoch) that dies by SIGKILL, like a
# machine going down, and appends each epoch it starts to the file $EPOCHS_RUN. Modes:
# "after": just after the resume state of `epoch` is written; "mid": in the second
# mini-batch of `epoch`; "write": half-way through writing the resume state of `epoch`.
KILLER = """
import io, os, signal, sys
import torch
from pipeline.training import resume, loop as train
from pipeline.config.params import load_params
stage, task, mode, at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
log = open(os.environ["EPOCHS_RUN"], "a")
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
run_epoch, save = train.Trainer.run_epoch, resume.ResumeFile.save

def counted(self, loader, epoch):
    print(epoch, file=log, flush=True)
    if mode == "mid" and epoch == at:
        objective, calls = self.objective, []
        def dying(*args):
            calls.append(1)
            if len(calls) == 2:
                die()
            return objective(*args)
        self.objective = dying
    return run_epoch(self, loader, epoch)

def save_then_die(self, state):
    save(self, state)
    if mode == "after" and state["epoch"] == at:
        die()

class TornSave:
    def __getattr__(self, name):
        return getattr(torch, name)
    def save(self, state, path):
        if mode != "write" or state["epoch"] != at:
            return torch.save(state, path)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        with open(path, "wb") as handle:
            handle.write(buffer.getvalue()[: buffer.tell() // 2])
        die()

train.Trainer.run_epoch, resume.ResumeFile.save, resume.torch = counted, save_then_die, TornSave()
if stage == "train":
    from stages.train import main
    main(load_params(), task)
else:
    from stages.retrain import main
    main(load_params())
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
    """A pipeline directory with the tiny store, its pooled features, databases,
    augmentations and the refined labels of a WSEL model (the inputs of every training)."""
    root = tmp_path_factory.mktemp("resume")
    shutil.copytree(tiny_store, root / "data" / "ave")
    shutil.copytree(tiny_pooled, root / "data" / "pooled")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"].update({"hidden": 8, "blocks": 2, "attention_dim": 4, "classifier_hidden": 8})
    params["train"].update({"epochs": EPOCHS, "batch_size": 16, "device": "cpu"})
    params["refine"].update({"retrain_epochs": EPOCHS})
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    cwd = Path.cwd()
    os.chdir(root)
    try:
        database.main()
        augment.main(params)
        train.main(load_params(), "wsel")
        refine.main(load_params())
    finally:
        os.chdir(cwd)
    return root


# (stage, task, model, train.workers): DPNet on resident data, the AVE baseline on 7x7
# maps read by a DataLoader worker process, and the retraining on refined labels
RUNS = {
    "dpnet-sel": ("train", "sel", "dpnet", 0),
    "dpnet-wsel": ("train", "wsel", "dpnet", 0),
    "ave-sel-worker": ("train", "sel", "ave", 1),
    "dpnet-retrain": ("retrain", "wsel_refined", "dpnet", 0),
}


def _copy(workdir: Path, target: Path, run: str) -> Path:
    _, _, model, workers = RUNS[run]
    shutil.copytree(workdir, target)
    params = yaml.safe_load((target / "params.yaml").read_text())
    params["model"]["name"] = model
    params["train"]["workers"] = workers
    (target / "params.yaml").write_text(yaml.safe_dump(params))
    return target


def _killed(cwd: Path, run: str, mode: str, epoch: int) -> list[int]:
    """Run the stage in a subprocess that dies as ``mode`` says; the epochs it started."""
    stage, task, *_ = RUNS[run]
    started = cwd / "killed-epochs.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1", "EPOCHS_RUN": str(started)}
    command = [sys.executable, "-c", KILLER, stage, task, mode, str(epoch)]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr
    return [int(line) for line in started.read_text().split()]


def _to_the_end(cwd: Path, run: str, monkeypatch) -> list[int]:
    """Run the stage to the end in this process; the epochs it ran."""
    stage, task, *_ = RUNS[run]
    ran = []
    run_epoch = Trainer.run_epoch

    def counted(self, loader, epoch):
        ran.append(epoch)
        return run_epoch(self, loader, epoch)

    with monkeypatch.context() as patch:
        patch.chdir(cwd)
        patch.setattr(Trainer, "run_epoch", counted)
        if stage == "train":
            train.main(load_params(), task)
        else:
            retrain.main(load_params())
    return ran


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


@pytest.fixture(scope="module")
def uninterrupted(workdir, tmp_path_factory):
    """The outputs of each run of :data:`RUNS` never interrupted (computed once each)."""
    found = {}

    def outputs(run: str) -> dict:
        if run not in found:
            cwd = _copy(workdir, tmp_path_factory.mktemp("whole") / run, run)
            with pytest.MonkeyPatch.context() as patch:
                assert _to_the_end(cwd, run, patch) == list(range(1, EPOCHS + 1))
            found[run] = _outputs(cwd, RUNS[run][1])
        return found[run]

    return outputs


# (run, how it dies, in or after which epoch, the epoch whose state is then on disk)
KILLS = [
    ("dpnet-sel", "mid", 3, 2),
    ("dpnet-sel", "write", 3, 2),
    ("dpnet-wsel", "mid", 2, 1),
    ("ave-sel-worker", "mid", 3, 2),
    ("dpnet-retrain", "write", 2, 1),
]


@pytest.mark.parametrize(("run", "mode", "epoch", "saved"), KILLS)
def test_a_killed_stage_resumes_running_only_the_remaining_epochs_and_ends_bit_identical(
    workdir, uninterrupted, tmp_path, monkeypatch, run, mode, epoch, saved
):
    task = RUNS[run][1]
    broken = _copy(workdir, tmp_path / "broken", run)
    assert _killed(broken, run, mode, epoch) == list(range(1, epoch + 1))
    state = broken / ".resume" / f"{task}.pt"
    assert torch.load(state, weights_only=True)["epoch"] == saved
    if mode == "write":  # the torn write is a temporary file beside the intact state
        assert len(list(state.parent.glob(f".{task}.pt.*.tmp"))) == 1
    # the resumed process runs exactly the epochs after the saved one: without the restore
    # it would run them all, and with a skipped restore its weights would differ
    assert _to_the_end(broken, run, monkeypatch) == list(range(saved + 1, EPOCHS + 1))
    assert not (broken / ".resume").exists()  # state and torn write removed on success
    expected, found = uninterrupted(run), _outputs(broken, task)
    assert found["meta"] == expected["meta"]
    assert found["metrics"] == expected["metrics"]
    assert found["log"] == expected["log"]  # dvclive's files, byte for byte
    assert set(found["state"]) == set(expected["state"])
    for key, tensor in expected["state"].items():
        assert torch.equal(found["state"][key], tensor), key
    assert json.loads(expected["log"]["metrics.json"])["step"] == EPOCHS
    assert expected["log"]["plots/metrics/lr.tsv"].decode().startswith("step\tlr\n")


def test_a_resume_state_of_other_params_is_ignored(workdir, tmp_path, monkeypatch, capsys):
    other = _copy(workdir, tmp_path / "other", "dpnet-wsel")
    ResumeFile(other / ".resume" / "wsel.pt", "another run").save({"epoch": 3})
    assert _to_the_end(other, "dpnet-wsel", monkeypatch) == list(range(1, EPOCHS + 1))
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
    # a state of an earlier layout (before both tasks shared the loop) is not resumed
    old = state.load()
    old["best"] = {"best_state": {}, "best_epoch": 4, "best_val_accuracy": 0.5, "history": []}
    state.save({k: v for k, v in old.items() if k not in ("key", "format")})
    logged = []
    fit(trainer, loader, loader, 5, resume=state, on_epoch=lambda row: logged.append(1))
    assert len(logged) == 5
