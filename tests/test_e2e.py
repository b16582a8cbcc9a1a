"""End to end: the DVC pipeline in a temporary git repository, on tiny synthetic data.

A first ``dvc repro`` builds everything; a second does nothing; ``dvc repro --force``
reproduces ``dvc.lock`` byte for byte; an experiment in a fresh workspace (as queued ones
run) generates and pools nothing again; ``dvc exp run -S`` on a model key retrains and
``dvc metrics diff`` lists the change; a key no stage reads fails.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import yaml

from pipeline.data.synthetic import generate_synthetic

ROOT = Path(__file__).resolve().parents[1]
COPIED = ["dvc.yaml", "params.yaml", "pipeline", "stages", ".dvc", ".dvcignore", ".gitignore"]
TINY_DATA = {
    "n_train": 28,
    "n_val": 8,
    "n_test": 8,
    "n_background": 4,
    "audio_dim": 8,
    "visual_dim": 8,
    "map_size": 3,
}

TINY_AVVP = {
    "synthetic": {
        "n_train": 16,
        "n_val": 4,
        "n_test": 4,
        "audio_dim": 8,
        "frame_dim": 8,
        "snippet_dim": 8,
    },
    "model": {"hidden": 8, "feedforward": 8},
    "train": {"epochs": 2, "batch_size": 8},
    "evaluate": {"bootstrap": 20},
}
ALWAYS = {"download", "avvp_download", "model_code", "avvp_model_code"}  # a hash per file

pytestmark = pytest.mark.e2e


def _run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env["DVC_NO_ANALYTICS"] = "1"
    env["XDG_CACHE_HOME"] = str(cwd.parent / "user_cache")  # the file ledger, not in ~
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "dvc", *args], cwd, check)


def _git(cwd: Path, *args: str) -> None:
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd)


def copy_project(dest: Path) -> None:
    """Copy what a DVC run of the pipeline needs (:data:`COPIED`) into ``dest``."""
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache")
            )
        else:
            shutil.copy2(source, dest / name)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("repo")
    copy_project(repo)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["synthetic"].update(TINY_DATA)
    params["model"].update({"hidden": 8, "attention_dim": 4, "classifier_hidden": 8})
    params["train"].update({"epochs": 2, "batch_size": 16, "device": "cpu"})
    params["refine"]["retrain_epochs"] = 2
    params["evaluate"].update({"device": "cpu", "timeline_videos": 2})
    for section, values in TINY_AVVP.items():  # the AVVP task's stages, on a tiny LLP store
        params["avvp"][section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "tiny pipeline")
    _dvc(repo, "repro")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "first repro")
    return repo


def test_repro_writes_every_output(repo):
    for task in ("sel", "wsel", "wsel_refined"):
        assert (repo / "data" / "models" / f"{task}.pt").is_file()
        assert (repo / "reports" / f"{task}_confusion.png").stat().st_size > 0
        results = json.loads((repo / "metrics" / "evaluate" / f"{task}.json").read_text())
        assert 0.0 <= results["model"]["accuracy"] <= 1.0
        assert set(results) >= {"model", "gt_repeat", "model_repeat", "split"}
    for path in (repo / "data" / "ave").iterdir():  # links, one copy on disk
        assert path.stat().st_ino == (repo / "data" / "synthetic" / path.name).stat().st_ino
    assert (repo / "data" / "pooled" / "visual_feature.npy").is_file()
    download = json.loads((repo / "metrics" / "download.json").read_text())
    assert download["videos"] == {"train": 28, "val": 8, "test": 8}
    assert download["background_videos"] == 4
    summary = (repo / "reports" / "summary.md").read_text()
    assert "GT-repeat" in summary and "WSEL refined model + B2ILC" in summary
    for name in (
        "db/subevents.npz",
        "db/states.npz",
        "augmented/replicas.npz",
        "refined/labels.npz",
    ):
        assert (repo / "data" / name).is_file()
    database = json.loads((repo / "metrics" / "database.json").read_text())
    assert database["training_videos"] == 28
    augment = json.loads((repo / "metrics" / "augment.json").read_text())
    assert augment["replicas"] == 28 * 10
    refine = json.loads((repo / "metrics" / "refine.json").read_text())
    assert refine["slices"] == 28 * 4 and refine["labels"] == "refined"
    train = json.loads((repo / "metrics" / "train" / "sel.json").read_text())
    assert train["replicate"] and train["link_applied"]
    for task in ("han", "han_lr"):  # the AVVP task
        assert (repo / "data" / "models" / f"avvp_{task}.pt").is_file()
        results = json.loads((repo / "metrics" / "avvp" / "evaluate" / f"{task}.json").read_text())
        assert 0.0 <= results["model"]["type_segment"] <= 1.0
    llp = json.loads((repo / "metrics" / "avvp" / "download.json").read_text())
    assert llp["videos"] == {"train": 16, "val": 4, "test": 4}


def test_second_repro_runs_only_the_store_check_and_changes_nothing(repo):
    lock = (repo / "dvc.lock").read_bytes()
    out = _dvc(repo, "repro").stdout
    assert _ran(out) == ALWAYS
    assert "didn't change, skipping" in out
    assert (repo / "dvc.lock").read_bytes() == lock


def test_an_edited_local_file_reruns_what_reads_the_store(repo, tmp_path):
    # data/ave/ is no DVC output (DVC would hash it in every fresh workspace): the download
    # stage, always run, must catch an edit of the user's own files through the manifest
    local = tmp_path / "official"  # the local source wants the official dimensions
    generate_synthetic(local, n_train=4, n_val=2, n_test=2, n_background=1)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"].update({"source": "local", "local_dir": str(local)})
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        assert _ran(_dvc(repo, "repro", "pool").stdout) == {"synthesize", "download", "pool"}
        assert _ran(_dvc(repo, "repro", "pool").stdout) == {"download"}
        with h5py.File(local / "visual_feature.h5", "r+") as h5:  # one map value, in place
            h5["avadataset"][0, 0, 0, 0, 0] += 1.0
        assert _ran(_dvc(repo, "repro", "pool").stdout) == {"download", "pool"}
    finally:
        _git(repo, "checkout", "--", ".")
        _dvc(repo, "repro", "pool")


def _ran(out: str) -> set[str]:
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}


def test_forced_repro_reproduces_the_lock_file_byte_for_byte(repo):
    # the run-cache and a shared remote can then serve every stage whose inputs are unchanged
    lock = (repo / "dvc.lock").read_bytes()
    out = _dvc(repo, "repro", "--force").stdout
    assert "train_sel" in _ran(out) and "synthesize" in _ran(out)
    after = (repo / "dvc.lock").read_bytes()
    assert after == lock, f"outputs whose md5 changed: {_changed_outputs(lock, after)}"


def _changed_outputs(before: bytes, after: bytes) -> list[str]:
    """Paths of the stage outputs whose md5 differs between two ``dvc.lock`` files."""

    def md5s(lock: bytes) -> dict[str, str]:
        stages = yaml.safe_load(lock)["stages"].values()
        return {out["path"]: out.get("md5") for stage in stages for out in stage.get("outs", [])}

    old, new = md5s(before), md5s(after)
    return sorted(path for path in old.keys() | new.keys() if old.get(path) != new.get(path))


def test_a_fresh_workspace_restores_the_data_instead_of_remaking_it(repo):
    # `dvc exp run --temp` runs in a new directory, as every queued experiment does
    out = _dvc(repo, "exp", "run", "--temp", "pool").stdout
    assert _ran(out) == {
        "download"
    }  # the store is relinked; generated and pooled data are restored (pool: no AVVP stage)


def test_exp_run_reruns_exactly_the_model_stages_and_diff_lists_the_change(repo):
    out = _dvc(repo, "exp", "run", "-S", "model.blocks=6").stdout
    assert _ran(out) == {
        *ALWAYS,
        "train_sel",
        "train_wsel",
        "refine",
        "retrain_wsel",
        "evaluate@sel",
        "evaluate@wsel",
        "evaluate@wsel_refined",
        "report",
    }
    diff = json.loads(_dvc(repo, "metrics", "diff", "--json").stdout)
    changed = diff["metrics/train/sel.json"]
    assert changed["parameters"]["new"] > changed["parameters"]["old"]  # 6 blocks, not 4
    assert "metrics/download.json" not in diff  # the data stage did not rerun
    table = _dvc(repo, "metrics", "diff", "--md").stdout
    assert "metrics/train/sel.json" in table and "parameters" in table
    _git(repo, "checkout", "--", ".")


@pytest.mark.parametrize(
    ("setting", "stages"),
    [
        ("refine.tau=0.1", {"refine", "retrain_wsel", "evaluate@wsel_refined", "report"}),
        ("augment.link=false", {"train_sel", "evaluate@sel", "report"}),
    ],
)
def test_each_stage_reruns_only_for_the_params_it_reads(repo, setting, stages):
    out = _dvc(repo, "exp", "run", "-S", setting).stdout
    assert _ran(out) == ALWAYS | stages  # always run, nothing changes
    _git(repo, "checkout", "--", ".")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        # DVC refuses a new key without "+"; with it, the train stage itself must refuse it.
        ("+model.blokcs=6", "params.yaml: model.blokcs: unknown key"),
        ("train.epochs=0", "params.yaml: train.epochs: Input should be greater than or equal"),
    ],
)
def test_a_bad_value_fails_the_stage_with_one_clear_line(repo, setting, message):
    result = _dvc(repo, "exp", "run", "-S", setting, check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    _git(repo, "checkout", "--", ".")


def test_training_logs_are_dvclive_plots_that_reproduce_byte_for_byte(repo):
    for task in ("sel", "wsel", "wsel_refined"):
        log = repo / "metrics" / "train_log" / task
        assert json.loads((log / "metrics.json").read_text())["step"] == 2
        rows = (log / "plots" / "metrics" / "val_accuracy.tsv").read_text().splitlines()
        assert rows[0] == "step\tval_accuracy" and len(rows) == 3  # no timestamp column
    for task in ("han", "han_lr"):  # the AVVP task's logs, through the same logger
        log = repo / "metrics" / "avvp" / "train_log" / task
        rows = (log / "plots" / "metrics" / "val_type_segment.tsv").read_text().splitlines()
        assert rows[0] == "step\tval_type_segment" and len(rows) == 1 + TINY_AVVP["train"]["epochs"]
    plots = json.loads(_dvc(repo, "plots", "show", "--json").stdout)["data"]
    assert set(plots) == {"train_loss", "val_accuracy", "learning_rate"}
    assert not (repo / ".resume").exists()  # removed once the stages succeeded
    _dvc(repo, "repro", "--force", "--single-item", "train_sel")
    changed = _run(["git", "status", "--porcelain", "metrics"], repo).stdout
    assert changed == ""  # the rerun wrote the same log and metrics
    _git(repo, "checkout", "--", ".")


def test_a_misspelled_model_name_stops_before_any_stage_deletes_its_outputs(repo):
    # DVC deletes a stage's outputs just before running it: the always-run download stage,
    # upstream of every training stage, checks model.name first
    checkpoint = (repo / "data" / "models" / "sel.pt").read_bytes()
    result = _dvc(repo, "exp", "run", "-S", "model.name=dpnte", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "params.yaml: model.name: unknown model 'dpnte' (did you mean 'dpnet'" in output
    assert _ran(result.stdout) <= {"download"}
    assert (repo / "data" / "models" / "sel.pt").read_bytes() == checkpoint
    _git(repo, "checkout", "--", ".")


def test_the_documented_commands_work_as_written(repo):
    # last: the README's and getting-started's runnable blocks, on this repro (commits a model)
    from tests.test_docs import run_documented_commands  # noqa: PLC0415 (a test module)

    run_documented_commands(repo)
