"""params.yaml reading: unknown, missing and mistyped keys fail with the key named."""

import pytest

from pipeline.errors import PipelineError
from pipeline.params import choice, load_params, section


def test_section_returns_the_mapping():
    params = {"train": {"lr": 0.1, "epochs": 3}}
    assert section(params, "train", ["lr", "epochs"]) == {"lr": 0.1, "epochs": 3}


def test_section_rejects_an_unknown_key_and_lists_the_valid_ones():
    params = {"model": {"name": "ave", "blokcs": 4}}
    with pytest.raises(PipelineError, match=r"model\.blokcs.*valid keys of 'model': hidden, name"):
        section(params, "model", ["name"], optional=["hidden"])


def test_section_names_a_missing_key():
    with pytest.raises(PipelineError, match=r"missing key\(s\) train\.epochs"):
        section({"train": {"lr": 1}}, "train", ["lr", "epochs"])


def test_section_reads_dotted_names_and_reports_missing_sections():
    params = {"data": {"synthetic": {"seed": 3}}}
    assert section(params, "data.synthetic", ["seed"]) == {"seed": 3}
    with pytest.raises(PipelineError, match="missing section 'data.local'"):
        section(params, "data.local", [])


def test_choice_names_key_and_allowed_values():
    assert choice("adam", "train.optimizer", ["adam", "sgd"]) == "adam"
    with pytest.raises(PipelineError, match=r"train\.optimizer must be one of \['adam'\]"):
        choice("rmsprop", "train.optimizer", ["adam"])


def test_load_params_errors_name_the_file(tmp_path):
    with pytest.raises(PipelineError, match="not found"):
        load_params(tmp_path / "params.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(PipelineError, match="bad.yaml: not valid YAML"):
        load_params(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n")
    with pytest.raises(PipelineError, match="expected a mapping of sections, found int"):
        load_params(scalar)
