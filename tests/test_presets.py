"""The presets hold the papers' settings (tests/test_schema.py checks them against the schema)."""

from pathlib import Path

from pipeline.params import load_params

ROOT = Path(__file__).resolve().parents[1]


def test_dpnet_preset_holds_the_papers_settings():
    params = load_params(path=ROOT / "presets" / "dpnet-paper.yaml")
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
    params = load_params(path=ROOT / "presets" / "edrnet-paper.yaml")
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
    params = load_params(path=ROOT / "presets" / "ave-paper.yaml")
    refine = params["refine"]
    assert (refine["window"], refine["stride"], refine["tau"], refine["auxiliary"]) == (
        4,
        2,
        0.05,
        True,
    )
    assert (params["train"]["epochs"], refine["retrain_epochs"]) == (200, 100)


def test_psp_preset_holds_the_official_codes_settings():
    params = load_params(path=ROOT / "presets" / "psp-paper.yaml")
    model, train = params["model"], params["train"]
    assert (model["name"], model["psp_threshold"], model["avps_weight"]) == ("psp", 0.099, 100)
    assert (model["hidden"], model["embed_hidden"], model["attention_hidden"]) == (128, 256, 512)
    assert (train["epochs"], train["batch_size"], train["lr"]) == (300, 128, 0.001)
    assert (train["scheduler"], train["milestones"], train["gamma"]) == (
        "multistep",
        [60, 120],
        0.8,
    )


def test_cmran_preset_holds_the_official_codes_settings():
    params = load_params(path=ROOT / "presets" / "cmran-paper.yaml")
    model, train = params["model"], params["train"]
    assert (model["name"], model["hidden"], model["heads"], model["feedforward"]) == (
        "cmran",
        256,
        4,
        2048,
    )
    assert (train["epochs"], train["batch_size"], train["lr"]) == (200, 32, 0.0005)
    assert (train["scheduler"], train["milestones"], train["gamma"]) == (
        "multistep",
        [10, 20, 30],
        0.5,
    )
