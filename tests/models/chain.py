"""One model through every training stage on the tiny store, outside DVC.

SEL (train, evaluate) and the weak chain of seed 004 (train@wsel with the auxiliary
objective, evaluate, refine, retrain, evaluate), with one epoch each: evidence that the
model fits every stage's contract, not about its accuracy.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import torch
import yaml

from pipeline.config import paths
from pipeline.data import store
from pipeline.data.dataset import AVEDataset
from pipeline.training.checkpoint import load_checkpoint
from stages import evaluate, pool, refine, retrain, train

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
    """The saved test predictions are the argmax of the saved model's scores."""
    model, _ = load_checkpoint(paths.checkpoint(task), torch.device("cpu"))
    test = AVEDataset(paths.STORE, "test")
    batch = test.__getitems__(list(range(len(test))))
    with torch.no_grad():
        scores = model(batch["audio"], batch["visual"])  # (n, T, C)
    saved = _read(paths.PREDICTIONS / f"{task}.json")
    assert np.array_equal(np.array(saved["model"]), scores.argmax(-1).numpy())
    results = _read(paths.EVALUATE_METRICS / f"{task}.json")
    assert 0 <= results["model"]["accuracy"] <= 1


def run_chain(tiny_store: Path, workdir: Path, monkeypatch, params: dict) -> None:
    """Train, evaluate, refine and retrain ``params``' model in ``workdir``; check each."""
    shutil.copytree(tiny_store, workdir / paths.STORE)
    monkeypatch.chdir(workdir)
    pool.main()
    name = params["model"]["name"]
    train.main(params, "sel")
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
