"""Proof of the AVVP model contract: a model written in this file alone goes through the
AVVP chain.

The model below is defined and registered here, and nothing in ``pipeline/`` knows it: it
is chosen by ``avvp.model.name``, trained by the avvp_train stage (the shared loop),
used by avvp_refine for the slice labels, retrained by avvp_retrain, evaluated by
avvp_evaluate, and rendered as the rows of a tiny Table 6 whose definition is checked
against the registry like ``ablations.yaml``. As tests/test_new_model.py does for AVEL.
"""

import json
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from pipeline.avvp.metrics import METRICS
from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.errors import PipelineError
from pipeline.experiments.ablations import load_ablations, plan
from pipeline.experiments.tables import render_markdown, table_numbers
from pipeline.losses import AVVPOutput
from pipeline.models import MODELS, AVVPModel, Hyper, register
from stages import avvp_download, avvp_evaluate, avvp_refine, avvp_synthesize, avvp_train
from tests.avvp.test_stages import TINY

ROOT = Path(__file__).resolve().parents[2]
NAME = "proof_avvp_mlp"


@pytest.fixture
def proof_model():
    """Per-segment MLPs of each modality, registered for this test only."""

    @register(NAME)
    class SegmentMLP(AVVPModel):
        """Scores each segment's audio and (frames + snippet) features apart; no attention
        across segments, so the MMIL pooling's temporal weights come from each segment.

        Args:
            audio_dim: audio feature size (default 128).
            frame_dim: frame feature size (default 2048).
            snippet_dim: snippet feature size (default 512).
            n_classes: event classes (default 25).
            width: hidden width (default 16).
        """

        hyperparameters = (Hyper("width", int, "hidden width of the MLPs", ge=1),)

        def __init__(
            self,
            audio_dim: int = 128,
            frame_dim: int = 2048,
            snippet_dim: int = 512,
            n_classes: int = 25,
            width: int = 16,
        ) -> None:
            super().__init__()
            self.audio = nn.Sequential(nn.Linear(audio_dim, width), nn.ReLU())
            self.visual = nn.Sequential(nn.Linear(frame_dim + snippet_dim, width), nn.ReLU())
            self.heads = nn.Linear(width, 3 * n_classes)  # probs, time and modality logits

        def forward(self, audio, frames, snippets) -> AVVPOutput:
            B, T = snippets.shape[:2]
            frames = frames.view(B, T, -1, frames.shape[-1]).mean(dim=2)  # (B, T, F)
            h = torch.stack(
                [self.audio(audio), self.visual(torch.cat([frames, snippets], dim=-1))], dim=2
            )  # (B, T, 2, width)
            probs, time, modality = self.heads(h).chunk(3, dim=-1)  # (B, T, 2, C) each
            return AVVPOutput(torch.sigmoid(probs), time, modality)

    yield SegmentMLP
    del MODELS[NAME]


@pytest.fixture
def workspace(proof_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A working directory whose params choose the model of this file, on a tiny store."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in TINY.items():
        params["avvp"][section].update(values)
    params["avvp"]["model"] = {"name": NAME, "width": 12}
    params["train"]["device"] = "cpu"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return load_params(("avvp", "train"))


TABLE = {
    "id": "proof-t6",
    "caption": "Label refinement on AVVP with a model of the test file",
    "seed": "004_ff2249906f0c53e9.txt",
    "ref": "Table 6",
    "metrics": list(METRICS),
    "reference": "mlp",
    "rows": [
        {"name": "mlp", "label": "MLP", "result": "avvp_han", "output": "model"},
        {"name": "mlp+lr", "label": "MLP + LR", "result": "avvp_han_lr", "output": "model"},
    ],
}


class _Workspace:
    """Each row's per-video scores as avvp_evaluate wrote them in this workspace."""

    def predictions(self, cell) -> dict:
        return json.loads((paths.PREDICTIONS / f"{cell.result}.json").read_text())


def _table(tmp_path: Path, model: str, extra: dict | None = None):
    overrides = {"avvp.model.name": model, "avvp.model.width": 12, **(extra or {})}
    rows = [
        {**row, "overrides": overrides, "targets": [f"avvp_evaluate@{row['result'][5:]}"]}
        for row in TABLE["rows"]
    ]
    path = tmp_path / "ablations.yaml"
    path.write_text(yaml.safe_dump({"tables": [{**TABLE, "rows": rows}]}))
    return load_ablations(path, ROOT / "dvc.yaml", ROOT / "params.yaml").tables[0]


def test_an_avvp_model_of_this_file_trains_refines_retrains_evaluates_and_renders(
    workspace: dict, tmp_path: Path
):
    avvp_synthesize.main(workspace)
    avvp_download.main(workspace)
    avvp_train.main(workspace, "han")
    avvp_refine.main(workspace)
    avvp_train.main(workspace, "han_lr")
    for task in paths.AVVP_TASKS:
        avvp_evaluate.main(workspace, task)
        saved = torch.load(paths.avvp_checkpoint(task), weights_only=True)
        assert (saved["name"], saved["kwargs"]["width"]) == (NAME, 12)
        assert "hidden" not in saved["kwargs"]  # HAN's keys are not this model's
        trained = json.loads(paths.avvp_train_metrics(task).read_text())
        assert [row["epoch"] for row in trained["history"]] == [1, 2]
    refine = json.loads(paths.AVVP_REFINE_METRICS.read_text())
    assert refine["slices"] == 24 * 4
    results = json.loads(paths.avvp_evaluate_metrics("han_lr").read_text())

    table = _table(tmp_path, NAME)
    numbers = table_numbers(table, [0], plan([table], [0]), _Workspace(), "o_ave")
    summary = numbers["mlp+lr"]["summary"]
    assert summary["type_segment"]["mean"] == pytest.approx(results["model"]["type_segment"])
    markdown = render_markdown(table, [0], {"o_ave": numbers}, "synthetic", avvp=True)
    assert "| MLP + LR (`mlp+lr`) |" in markdown and "Type@AV Seg." in markdown


def test_its_rows_and_params_are_checked_against_the_registry(proof_model, tmp_path: Path):
    with pytest.raises(PipelineError, match=r"avvp.model.name: Input should be .*'proof_avvp_mlp'"):
        _table(tmp_path, "proof_avvp_mpl")
    with pytest.raises(PipelineError, match=r"avvp.model.name: Input should be 'han' or"):
        _table(tmp_path, "psp")  # an AVEL model is no AVVP model
    assert _table(tmp_path, NAME).row("mlp").overrides["avvp.model.name"] == NAME
    with pytest.raises(
        PipelineError, match="avvp.model.hidden: not read by model 'proof_avvp_mlp'"
    ):
        _table(tmp_path, NAME, {"avvp.model.hidden": 64})
