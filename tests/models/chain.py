"""Any registered model through every setting it supports, on the tiny store, outside DVC.

:func:`run_chain` takes a model, pooled or map (``needs_maps``), through SEL with
Replicate and the SMB-fused videos (and Link when the model has a graph layer), the weak
chain of seed 004 (train@wsel with the auxiliary objective, refine, retrain on the refined
labels) and evaluation with B2ILC, one epoch each: evidence that the model fits every
stage's contract, not about its accuracy. A new model's test is one call::

    def test_every_stage(tiny_store, tmp_path, monkeypatch):
        run_chain(tiny_store, tmp_path, monkeypatch, "mlp", width=8)
"""

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from pipeline.config import paths
from pipeline.data import store
from pipeline.data.dataset import AVEDataset
from pipeline.models import MODELS
from pipeline.training.checkpoint import load_checkpoint
from stages import augment, database, evaluate, pool, refine, retrain, train

ROOT = Path(__file__).resolve().parents[2]


def tiny_params(name: str, model: dict) -> dict:
    """The default params with model ``name``, tiny sizes and one epoch per stage."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"] = {"name": name, **model}
    params["train"].update({"epochs": 1, "batch_size": 16, "device": "cpu"})
    params["augment"].update({"replicate": False, "smb_per_class": 0})
    params["refine"].update({"auxiliary": True, "retrain_epochs": 1})
    params["evaluate"].update({"device": "cpu", "bootstrap": 20, "timeline_videos": 1})
    return params


def _read(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def check_predictions(task: str) -> None:
    """The saved test predictions are the argmax of the saved model's scores, fed as the
    stages feed it (7x7 maps or their average)."""
    model, _ = load_checkpoint(paths.checkpoint(task), torch.device("cpu"))
    test = AVEDataset(paths.STORE, "test", paths.pooled_features(model.needs_maps))
    batch = test.__getitems__(list(range(len(test))))
    with torch.no_grad():
        scores = model(batch["audio"], batch["visual"])  # (n, T, C)
    saved = _read(paths.PREDICTIONS / f"{task}.json")
    assert np.array_equal(np.array(saved["model"]), scores.argmax(-1).numpy())
    results = _read(paths.EVALUATE_METRICS / f"{task}.json")
    assert 0 <= results["model"]["accuracy"] <= 1
    assert "model_b2ilc" in results
    for output in model.outputs[:-1]:  # every named output besides the default is scored
        assert f"model_output_{output}" in results


def run_chain(
    tiny_store: Path, workdir: Path, monkeypatch, model: str | dict, **hyperparameters: Any
) -> None:
    """Take ``model`` through every training stage in ``workdir``, checking each.

    Args:
        tiny_store: the tiny synthetic store (the ``tiny_store`` fixture).
        workdir: an empty directory (``tmp_path``); the working directory becomes it.
        monkeypatch: pytest's fixture (restores the working directory).
        model: a registered model name, its ``hyperparameters`` given as keywords; or the
            whole params mapping (:func:`tiny_params`, to change other sections too).
        **hyperparameters: ``model.<key>`` values (default: the constructor's).
    """
    params = model if isinstance(model, dict) else tiny_params(model, hyperparameters)
    name = params["model"]["name"]
    shutil.copytree(tiny_store, workdir / paths.STORE)
    monkeypatch.chdir(workdir)
    pool.main()
    database.main()
    sel = {**params, "augment": {**params["augment"], "replicate": True, "link": True}}
    sel["augment"]["smb_per_class"] = 1
    augment.main(sel)
    train.main(sel, "sel")
    trained = _read(paths.TRAIN_METRICS / "sel.json")
    assert trained["replicate"] and trained["link_applied"] == MODELS[name].uses_graph
    evaluate.main(params, "sel")
    check_predictions("sel")
    train.main(params, "wsel")
    assert _read(paths.TRAIN_METRICS / "wsel.json")["auxiliary"] is True
    evaluate.main(params, "wsel")
    check_predictions("wsel")
    refine.main(params)
    n = len(store.split_order(paths.STORE, "train"))
    assert _read(paths.REFINE_METRICS)["slices"] == n * 4
    retrain.main(params)
    assert _read(paths.TRAIN_METRICS / "wsel_refined.json")["labels"] == "refined"
    evaluate.main(params, "wsel_refined")
    check_predictions("wsel_refined")
    for task in ("sel", "wsel", "wsel_refined"):
        saved = torch.load(paths.checkpoint(task), weights_only=True)
        assert saved["name"] == name and saved["task"] == task
