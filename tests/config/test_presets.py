"""The presets: the papers' settings as differences from params.yaml, applied by one command."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config.presets import apply_preset, differences, merged, preset_params
from pipeline.errors import PipelineError
from pipeline.models import declarations

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())
PRESETS = sorted((ROOT / "presets").glob("*.yaml"))


def _preset(name: str) -> dict:
    return preset_params(ROOT / "presets" / f"{name}.yaml", ROOT / "params.yaml")


def test_dpnet_preset_holds_the_papers_settings():
    params = _preset("dpnet-paper")
    model = params["model"]
    assert (model["name"], model["hidden"], model["blocks"], model["kernel"]) == (
        "dpnet",
        768,
        4,
        3,
    )
    assert (model["order"], model["dropout"]) == ("graph_first", 0.2)
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
    params = _preset("edrnet-paper")
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
    params = _preset("ave-paper")
    refine = params["refine"]
    assert (refine["window"], refine["stride"], refine["tau"], refine["auxiliary"]) == (
        4,
        2,
        0.05,
        True,
    )
    assert (params["train"]["epochs"], refine["retrain_epochs"]) == (200, 100)
    assert (params["model"]["hidden"], params["model"]["attention_dim"]) == (128, 49)


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_a_preset_holds_only_what_differs_from_the_defaults(path):
    preset = yaml.safe_load(path.read_text())
    # except the keys of the model a preset names: they state the paper's value (params.yaml
    # holds every model's keys, generated, and its defaults may move)
    name = preset.get("model", {}).get("name")
    own = set(declarations([name])[name]) if name and name != DEFAULTS["model"]["name"] else set()
    expected = {**preset}
    if "model" in preset:
        expected["model"] = {k: v for k, v in preset["model"].items() if k not in own}
        expected["model"].update(differences(preset, DEFAULTS).get("model", {}))
        expected = {k: v for k, v in expected.items() if v}
    assert differences(preset, DEFAULTS) == expected
    assert merged(DEFAULTS, preset) != DEFAULTS


def test_merged_and_differences_by_hand():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2}
    changes = {"a": {"y": [3]}, "c": 4}
    assert merged(base, changes) == {"a": {"x": 1, "y": [3]}, "b": 2, "c": 4}
    assert differences(merged(base, changes), base) == changes
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 2}  # not modified


def test_applying_a_preset_rewrites_params_keeping_comments(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.config.presets",
            str(ROOT / "presets" / "dpnet-paper.yaml"),
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    text = params.read_text()
    assert yaml.safe_load(text) == _preset("dpnet-paper")
    assert "# seed 001 §4 (seed 004 §5.1 uses 64)" in text  # a comment of params.yaml kept
    assert "  hidden: 768              # dpnet, edrnet: feature size d" in text
    # it says what it changed, warns about the placeholder it wrote, and keeps nulls and lists
    before = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert f"  model.hidden: {before['model']['hidden']} -> 768\n" in result.stdout
    old = ", ".join(map(str, before["train"]["milestones"]))
    assert f"  train.milestones: [{old}] -> [300, 400]\n" in result.stdout
    assert "warning: params.yaml: data.local_dir is a placeholder (/path/to/" in result.stdout
    assert "  download_dir: null " in text and "  milestones: [300, 400] " in text


def test_a_bad_preset_names_the_key_and_leaves_params_untouched(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: 0\n")
    with pytest.raises(PipelineError, match=r"with .*bad.yaml: train.epochs: Input should be"):
        apply_preset(bad, params)
    assert params.read_text() == (ROOT / "params.yaml").read_text()


def test_psp_preset_holds_the_official_codes_settings():
    params = _preset("psp-paper")
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
    params = _preset("cmran-paper")
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
