"""Proof of the model contract: a model written in this file alone goes through everything.

The model below is defined and registered here, and nothing else in the repository knows
it: it is trained on SEL and on WSEL with the auxiliary objective, taken through refine
and retrain, evaluated with B2ILC, and rendered as the rows of a tiny table whose
definition is checked against the registry like ``ablations.yaml``.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from pipeline.config import paths
from pipeline.config.schema import validate_params
from pipeline.errors import PipelineError
from pipeline.experiments.ablations import load_ablations, plan
from pipeline.experiments.tables import render_markdown, table_numbers
from pipeline.models import MODELS, AVELModel, Hyper, register
from stages import evaluate, pool, refine, retrain, train

ROOT = Path(__file__).resolve().parents[1]
NAME = "proof_mlp"


@pytest.fixture
def proof_model():
    """A per-segment MLP over both modalities, registered for this test only."""

    @register(NAME)
    class SegmentMLP(AVELModel):
        """Scores each segment from its concatenated audio and pooled visual features.

        Args:
            audio_dim: audio feature size (default 128).
            visual_dim: visual channels (default 512).
            n_classes: classes including background (default 29).
            width: hidden width (default 16).
        """

        hyperparameters = (Hyper("width", int, "hidden width of the MLP", ge=1),)

        def __init__(
            self, audio_dim: int = 128, visual_dim: int = 512, n_classes: int = 29, width: int = 16
        ) -> None:
            super().__init__()
            self.mlp = nn.Sequential(
                nn.Linear(audio_dim + visual_dim, width), nn.ReLU(), nn.Linear(width, n_classes)
            )

        def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
            return self.mlp(torch.cat([audio, visual], dim=-1))  # (B, T, C)

    yield SegmentMLP
    del MODELS[NAME]


@pytest.fixture
def workspace(proof_model, tiny_store, tmp_path, monkeypatch) -> dict:
    shutil.copytree(tiny_store, tmp_path / paths.STORE)
    monkeypatch.chdir(tmp_path)
    pool.main()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"] = {"name": NAME, "width": 12}
    params["train"].update({"epochs": 2, "batch_size": 16, "device": "cpu"})
    params["augment"].update({"replicate": False, "smb_per_class": 0})
    params["refine"].update({"auxiliary": True, "retrain_epochs": 2})
    params["evaluate"].update({"device": "cpu", "bootstrap": 20, "b2ilc": True})
    return params


TABLE = {
    "id": "proof",
    "caption": "A model of the test file",
    "seed": "004_ff2249906f0c53e9.txt",
    "ref": "none",
    "metrics": ["accuracy"],
    "reference": "sel",
    "rows": [
        {"name": "sel", "label": "MLP", "result": "sel", "output": "model"},
        {"name": "sel+b2ilc", "label": "MLP + B2ILC", "result": "sel", "output": "model_b2ilc"},
        {"name": "wsel", "label": "MLP (WSEL)", "result": "wsel", "output": "model"},
        {"name": "lr", "label": "MLP+A+LR", "result": "wsel_refined", "output": "model"},
    ],
}


class _Workspace:
    """Each row's predictions as the evaluate stage wrote them in this workspace."""

    def predictions(self, cell) -> dict:
        return json.loads((paths.PREDICTIONS / f"{cell.result}.json").read_text())


def _table(tmp_path: Path, model: str):
    overrides = {"model.name": model, "model.width": 12}
    rows = [
        {**row, "overrides": overrides, "targets": [f"evaluate@{row['result']}"]}
        for row in TABLE["rows"]
    ]
    path = tmp_path / "ablations.yaml"
    path.write_text(yaml.safe_dump({"tables": [{**TABLE, "rows": rows}]}))
    return load_ablations(path, ROOT / "dvc.yaml", ROOT / "params.yaml").tables[0]


def test_a_model_of_this_file_trains_refines_evaluates_and_renders(workspace, tmp_path):
    train.main(workspace, "sel")
    train.main(workspace, "wsel")
    refine.main(workspace)
    retrain.main(workspace)
    for task in ("sel", "wsel", "wsel_refined"):
        evaluate.main(workspace, task)
    for task in ("sel", "wsel", "wsel_refined"):
        saved = torch.load(paths.checkpoint(task), weights_only=True)
        assert (saved["name"], saved["kwargs"]["width"]) == (NAME, 12)
    wsel = json.loads((paths.TRAIN_METRICS / "wsel.json").read_text())
    assert wsel["model"] == NAME and wsel["auxiliary"] is True
    assert json.loads(paths.REFINE_METRICS.read_text())["labels"] == "refined"
    results = json.loads((paths.EVALUATE_METRICS / "sel.json").read_text())
    assert {"model", "model_b2ilc", "model_repeat"} <= set(results)

    table = _table(tmp_path, NAME)
    numbers = table_numbers(table, [0], plan([table], [0]), _Workspace(), "o_ave")
    assert numbers["sel"]["summary"]["accuracy"]["mean"] == pytest.approx(
        results["model"]["accuracy"]
    )
    assert numbers["sel+b2ilc"]["summary"]["accuracy"]["mean"] == pytest.approx(
        results["model_b2ilc"]["accuracy"]
    )
    markdown = render_markdown(table, [0], {"o_ave": numbers}, "synthetic")
    refined = json.loads((paths.EVALUATE_METRICS / "wsel_refined.json").read_text())
    assert f"| MLP+A+LR (`lr`) | **{100 * refined['model']['accuracy']:.1f}**" in markdown


def test_its_table_rows_are_checked_against_the_registry(proof_model, tmp_path):
    with pytest.raises(PipelineError, match="model.name: Input should be .*'proof_mlp'"):
        _table(tmp_path, "proof_mpl")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    with pytest.raises(PipelineError, match="model.width: Input should be greater than or equal"):
        validate_params({**params, "model": {"name": NAME, "width": 0}}, ("model",))
    table = _table(tmp_path, NAME)
    assert table.row("lr").overrides == {"model.name": NAME, "model.width": 12}
