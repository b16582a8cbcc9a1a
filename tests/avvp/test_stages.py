"""The AVVP stages: dvc.yaml declares what they read; the chain runs on a tiny store."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.errors import PipelineError
from pipeline.models import code_fingerprint
from pipeline.training.checkpoint import load_checkpoint, save_checkpoint
from stages import avvp_download, avvp_evaluate, avvp_refine, avvp_synthesize, avvp_train

ROOT = Path(__file__).resolve().parents[2]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize(
    ("stage", "declared"),
    [
        ("avvp_synthesize", avvp_synthesize.PARAMS),
        ("avvp_download", avvp_download.PARAMS),
        ("avvp_train", avvp_train.PARAMS["han"]),
        ("avvp_retrain", avvp_train.PARAMS["han_lr"]),
        ("avvp_refine", avvp_refine.PARAMS),
        ("avvp_evaluate", avvp_evaluate.PARAMS),
        ("avvp_model_code", ("avvp.model.name",)),
    ],
)
def test_dvc_yaml_declares_exactly_the_params_each_stage_reads(stage, declared):
    body = STAGES[stage].get("do", STAGES[stage])
    assert sorted(body["params"]) == sorted(declared)


@pytest.mark.parametrize("stage", ["avvp_train", "avvp_refine", "avvp_retrain", "avvp_evaluate"])
def test_stages_building_an_avvp_model_depend_on_its_code_fingerprint_only(stage):
    deps = STAGES[stage].get("do", STAGES[stage])["deps"]
    assert str(paths.AVVP_MODEL_CODE) in deps
    assert not [d for d in deps if d.startswith("pipeline/models/") and "han" in d]
    body = STAGES["avvp_model_code"]
    assert body["outs"] == [str(paths.AVVP_MODEL_CODE)] and body["always_changed"] is True


def test_the_avvp_fingerprint_holds_the_files_of_its_own_model_only():
    files = json.loads(code_fingerprint("han", ROOT))["files"]
    assert "pipeline/models/han.py" in files and "pipeline/models/base.py" in files
    assert not [f for f in files if f.endswith(("psp.py", "dpnet.py", "graph.py"))]


def test_evaluate_items_are_the_tasks():
    assert STAGES["avvp_evaluate"]["foreach"] == list(paths.AVVP_TASKS) == list(avvp_train.TASKS)


TINY = {
    "synthetic": {
        "seed": 0,
        "n_train": 24,
        "n_val": 6,
        "n_test": 8,
        "audio_dim": 8,
        "frame_dim": 12,
        "snippet_dim": 6,
    },
    "model": {"hidden": 8, "feedforward": 8},
    "train": {"epochs": 2, "batch_size": 8},
    "evaluate": {"bootstrap": 20},
}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A working directory with the default params made tiny; returns the params."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in TINY.items():
        params["avvp"][section].update(values)
    params["train"]["device"] = "cpu"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the ledger, not in ~
    return load_params(("avvp", "train"))


def test_the_chain_writes_every_output(workspace: dict):
    avvp_synthesize.main(workspace)
    avvp_download.main(workspace)
    download = json.loads(paths.AVVP_DOWNLOAD_METRICS.read_text())
    assert download["videos"] == {"train": 24, "val": 6, "test": 8}
    assert set(download["sha256"]) >= {"AVVP_train.csv", "vggish/", "res152/"}
    with pytest.raises(PipelineError, match="avvp_han.pt: checkpoint not found"):
        avvp_refine.main(workspace)
    avvp_train.main(workspace, "han")
    avvp_refine.main(workspace)
    refine = json.loads(paths.AVVP_REFINE_METRICS.read_text())
    assert refine["slices"] == 24 * 4 and set(refine["val_quality"]) >= {"audio_f1", "all_f1"}
    avvp_train.main(workspace, "han_lr")
    assert not paths.RESUME.exists()  # the resume states are removed with the outputs written
    for task in paths.AVVP_TASKS:  # dvclive's per-epoch curves, one row per epoch
        curve = paths.avvp_train_log(task) / "plots" / "metrics" / "val_type_segment.tsv"
        assert len(curve.read_text().splitlines()) == 1 + 2
    for task in paths.AVVP_TASKS:
        avvp_evaluate.main(workspace, task)
        results = json.loads(paths.avvp_evaluate_metrics(task).read_text())
        for name, value in results["model"].items():
            assert results["ci"][f"{name}_ci_low"] <= value <= results["ci"][f"{name}_ci_high"]
        scores = json.loads(paths.avvp_predictions(task).read_text())
        assert len(scores["names"]) == 8 and len(scores["model"]["type_event"]) == 8
        assert np.mean(scores["model"]["av_segment"]) == pytest.approx(
            results["model"]["av_segment"]
        )
        model, meta = load_checkpoint(paths.avvp_checkpoint(task), "cpu", "avvp")
        assert meta["kwargs"]["hidden"] == 8 and meta["epoch"] in (1, 2)
    with pytest.raises(PipelineError, match="stage argument"):
        avvp_train.main(workspace, "wsel")


def test_retrain_refuses_labels_of_other_videos(workspace: dict, tmp_path: Path):
    avvp_synthesize.main(workspace)
    avvp_download.main(workspace)
    avvp_train.main(workspace, "han")
    avvp_refine.main(workspace)
    saved = np.load(paths.AVVP_REFINED)
    arrays = {k: saved[k] for k in saved.files}
    arrays["names"] = arrays["names"][::-1]
    np.savez(paths.AVVP_REFINED, **arrays)
    with pytest.raises(PipelineError, match="labels.npz \\[key 'names'\\]: expected the 24"):
        avvp_train.main(workspace, "han_lr")


def test_an_unknown_or_avel_model_name_is_refused_naming_the_avvp_models(workspace: dict):
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["avvp"]["model"]["name"] = "hna"
    Path("params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(
        PipelineError, match=r"avvp.model.name: Input should be 'han'.*did you mean"
    ):
        load_params(("avvp",))
    avel = torch.nn.Linear(1, 1)
    save_checkpoint(paths.avvp_checkpoint("han"), avel.state_dict(), "psp", {})
    with pytest.raises(
        PipelineError,
        match="avvp_han.pt: avvp.model.name: model 'psp' serves the avel task, not avvp; "
        "valid names: han",
    ):
        load_checkpoint(paths.avvp_checkpoint("han"), "cpu", "avvp")
