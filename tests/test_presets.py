"""The presets are complete parameter files that every stage accepts."""

from pathlib import Path

import pytest

from pipeline.data.synthetic import generate_synthetic
from pipeline.models import MODELS, all_hyperparameters, model_arguments
from pipeline.params import AUGMENT_KEYS, REFINE_KEYS, TRAIN_KEYS, load_params, section
from pipeline.signature import keyword_names
from stages.evaluate import EVALUATE_KEYS

ROOT = Path(__file__).resolve().parents[1]
PARAMS = [ROOT / "params.yaml", *sorted((ROOT / "presets").glob("*.yaml"))]


@pytest.mark.parametrize("path", PARAMS, ids=lambda p: p.name)
def test_every_section_has_exactly_the_keys_its_stage_reads(path):
    params = load_params(path)
    section(params, "data", ["source", "local_dir", "download_dir", "sources", "synthetic"])
    section(params, "data.synthetic", [], optional=keyword_names(generate_synthetic))
    model = dict(section(params, "model", ["name"], optional=all_hyperparameters()))
    name = model.pop("name")
    assert name in MODELS
    kwargs, _ = model_arguments(name, model, {})
    assert kwargs  # the chosen model reads some of the keys
    section(params, "train", TRAIN_KEYS)
    section(params, "augment", AUGMENT_KEYS)
    section(params, "refine", REFINE_KEYS)
    section(params, "evaluate", EVALUATE_KEYS)


def test_dpnet_preset_holds_the_papers_settings():
    params = load_params(ROOT / "presets" / "dpnet-paper.yaml")
    assert params["model"] == {
        "name": "dpnet",
        "hidden": 768,
        "blocks": 4,
        "kernel": 3,
        "order": "graph_first",
        "dropout": 0.2,
    }
    train = params["train"]
    assert (train["batch_size"], train["epochs"], train["scheduler"]) == (
        48,
        400,
        "cosine_restarts",
    )
    assert (train["step_size"], train["milestones"], train["floors"]) == (
        20,
        [300, 400],
        [0.1, 0.01],
    )


def test_edrnet_preset_holds_the_papers_settings():
    params = load_params(ROOT / "presets" / "edrnet-paper.yaml")
    model = params["model"]
    assert (model["name"], model["kernel"], model["layers"], model["hidden"]) == (
        "edrnet",
        3,
        4,
        768,
    )
    assert params["augment"]["smb_per_class"] == 250
    assert params["data"]["source"] == "local"


def test_ave_preset_runs_the_papers_wsel_chain():
    params = load_params(ROOT / "presets" / "ave-paper.yaml")
    refine = params["refine"]
    assert (refine["window"], refine["stride"], refine["tau"], refine["auxiliary"]) == (
        4,
        2,
        0.05,
        True,
    )
    assert (params["train"]["epochs"], refine["retrain_epochs"]) == (200, 100)
