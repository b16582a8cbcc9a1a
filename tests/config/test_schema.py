"""The params schema: every key typed and range-checked, one clear line per mistake."""

import copy
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
import yaml
from annotated_types import Ge, Gt, Le, Lt

from pipeline.config.params import load_params
from pipeline.config.presets import preset_params
from pipeline.config.schema import (
    MODEL_TASKS,
    REFERENCE,
    SECTIONS,
    Synthetic,
    markdown_reference,
    missing_model_keys,
    readme_block,
    section_class,
    validate_params,
    with_model_keys,
)
from pipeline.config.signature import keyword_defaults
from pipeline.data.synthetic import generate_synthetic
from pipeline.errors import PipelineError
from pipeline.models import MODELS, check_model, declarations

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())
ALL = tuple(SECTIONS)


def _with(key: str, value) -> dict:
    """The default params with ``key`` (dotted) set to ``value``."""
    params = copy.deepcopy(DEFAULTS)
    *parents, last = key.split(".")
    node = params
    for part in parents:
        node = node[part]
    node[last] = value
    return params


def _error(key: str, value) -> str:
    with pytest.raises(PipelineError) as info:
        validate_params(_with(key, value), ALL)
    return str(info.value)


def _numeric_fields():
    """(dotted key, an out-of-range value, the bound) for every key with a numeric bound."""
    sections = [(name, section_class(name)) for name in SECTIONS] + [("data.synthetic", Synthetic)]
    for prefix, cls in sections:
        for key, field in cls.model_fields.items():
            for meta in field.metadata:
                if isinstance(meta, Ge):
                    yield f"{prefix}.{key}", meta.ge - 1, meta.ge
                elif isinstance(meta, Gt):
                    yield f"{prefix}.{key}", meta.gt, meta.gt
                elif isinstance(meta, Le):
                    yield f"{prefix}.{key}", meta.le + 1, meta.le
                elif isinstance(meta, Lt):
                    yield f"{prefix}.{key}", meta.lt, meta.lt


NUMERIC = list(_numeric_fields())


def test_every_numeric_key_has_a_range_case():
    keys = {key for key, _, _ in NUMERIC}
    assert {"train.epochs", "train.lr", "train.gamma", "refine.tau", "model.dropout"} <= keys
    assert {"data.synthetic.n_test", "data.synthetic.audio_noise", "evaluate.batch_size"} <= keys
    assert len(keys) >= 35


@pytest.mark.parametrize(("key", "value", "bound"), NUMERIC, ids=[k for k, _, _ in NUMERIC])
def test_a_value_outside_the_range_names_key_value_and_bound(key, value, bound):
    message = _error(key, value)
    assert message.count("\n") == 0
    assert message.startswith(f"params.yaml: {key}: ")
    assert f"found {value!r}" in message
    assert str(bound) in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        # the cases of the issue that used to give a traceback or nonsense
        ("train.epochs", 0, "train.epochs: Input should be greater than or equal to 1, found 0"),
        ("train.lr", "abc", "train.lr: Input should be a valid number, found 'abc'"),
        ("train.step_size", 0, "train.step_size: Input should be greater than or equal to 1"),
        ("train.batch_size", 0, "train.batch_size: Input should be greater than or equal to 1"),
        ("evaluate.batch_size", 0, "evaluate.batch_size: Input should be greater than or equal"),
        ("train.weight_decay", -1, "train.weight_decay: Input should be greater than or equal"),
        ("data.synthetic.audio_noise", -1, "data.synthetic.audio_noise: Input should be"),
        ("train.floors", [2, 0.5], "train.floors[0]: Input should be less than or equal to 1"),
        ("train.milestones", [30, 20], "train.milestones: expected increasing epochs"),
        ("data.synthetic.n_test", 0, "data.synthetic.n_test: Input should be greater than"),
        # types, choices and cross-key rules
        ("train.epochs", 2.5, "train.epochs: Input should be a valid integer, found 2.5"),
        ("train.epochs", True, "train.epochs: Input should be a valid integer, found True"),
        ("model.dropout", True, "model.dropout: expected a number, found True"),
        ("train.lr", float("inf"), "train.lr: Input should be a finite number, found inf"),
        (
            "train.gamma",
            float("nan"),
            "train.gamma: Input should be less than or equal to 1, found nan",
        ),
        ("train.optimizer", "rmsprop", "train.optimizer: Input should be 'adam', 'adamw' or"),
        ("train.device", "gpu", "train.device: expected auto, cpu, cuda or cuda:N, found 'gpu'"),
        ("train.floors", [0.1], "train.floors: cosine_restarts needs one floor per milestone"),
        ("refine.window", 6, "refine.window: expected window < (T + 1) / 2 = 5.5 (eq 14)"),
        ("refine.stride", 4, "refine.stride: expected a divisor of T - window = 6"),
        ("refine.labels", "gt", "refine.labels: Input should be 'refined', 'dummy' or 'pseudo'"),
        ("model.branches", ["a", "x"], "model.branches[1]: Input should be 'a', 'v' or 'av'"),
        ("model.order", "first", "model.order: Input should be 'graph_first' or 'graph_second'"),
        ("data.source", "s3", "data.source: Input should be 'synthetic', 'local', 'ave' or"),
        ("data.source", "local", "data.local_dir: must name a directory when data.source is"),
        ("data.sources", {"a.h5": {"sha256": "xyz"}}, "data.sources.a.h5.sha256: String should"),
        (
            "data.sources",
            {"a.h5": {"urll": "x"}},
            "data.sources.a.h5.urll: unknown key (did you mean 'url'?)",
        ),
        ("data.weights.vgg19.sha256", "0" * 63, "data.weights.vgg19.sha256: String should match"),
        (
            "data.weights.vgg19.pth",
            "x",
            "data.weights.vgg19.pth: unknown key (did you mean 'path'?)",
        ),
        ("data.source", "videos", "data.videos_dir: must name a directory when data.source is"),
        ("predict.device", "tpu", "predict.device: expected auto, cpu, cuda or cuda:N"),
        (
            "train.lrr",
            1,
            "train.lrr: unknown key (did you mean 'lr'?); valid keys of 'train': seed",
        ),
        (
            "model.blokcs",
            6,
            "model.blokcs: unknown key (did you mean 'blocks'?); valid keys of 'model'",
        ),
        (
            "data.synthetic.size",
            1,
            "data.synthetic.size: unknown key (did you mean 'map_size'?)",
        ),
    ],
)
def test_table_of_mistakes(key, value, expected):
    assert f"params.yaml: {expected}" in _error(key, value)


def test_multistep_needs_a_decay_epoch():
    params = _with("train.scheduler", "multistep")
    params["train"]["milestones"] = []
    with pytest.raises(PipelineError, match="train.milestones: multistep needs at least one"):
        validate_params(params, ALL)


def test_exponent_strings_are_numbers_and_defaults_pass():
    checked = validate_params(_with("train.lr", "1e-4"), ALL)
    assert checked["train"]["lr"] == pytest.approx(1e-4)
    assert validate_params(DEFAULTS, ALL)["train"] == DEFAULTS["train"]


def test_several_mistakes_give_one_line_each_and_missing_keys_are_named():
    params = _with("train.epochs", 0)
    params["evaluate"]["split"] = "dev"
    del params["augment"]["seed"]
    lines = str(pytest.raises(PipelineError, validate_params, params, ALL).value).splitlines()
    assert len(lines) == 3
    assert "params.yaml: augment.seed: missing key" in lines


def test_only_the_sections_read_are_checked_but_unknown_sections_never_pass():
    params = _with("train.epochs", 0)
    assert validate_params(params, ("evaluate",))["evaluate"] == DEFAULTS["evaluate"]
    params["tabels"] = {}
    with pytest.raises(PipelineError, match="unknown section.*tabels"):
        validate_params(params, ("evaluate",))
    del params["tabels"], params["evaluate"]
    with pytest.raises(PipelineError, match="params.yaml: evaluate: missing section"):
        validate_params(params, ("evaluate",))


def test_keys_left_out_stay_left_out():
    params = copy.deepcopy(DEFAULTS)
    params["data"]["synthetic"] = {"n_train": 30}
    params["model"] = {"name": "ave"}
    checked = validate_params(params, ALL)
    assert checked["data"]["synthetic"] == {"n_train": 30}
    assert checked["model"] == {"name": "ave"}


def test_schema_keys_are_exactly_what_the_code_takes():
    assert set(Synthetic.model_fields) == set(keyword_defaults(generate_synthetic))
    model_keys = set(section_class("model").model_fields) - {"name"}
    assert model_keys == {key for keys in declarations().values() for key in keys}
    assert set(get_args(section_class("model").model_fields["name"].annotation)) == set(
        MODELS.of_task("avel")
    )
    avvp = section_class("avvp").model_fields["model"].annotation
    assert set(get_args(avvp.model_fields["name"].annotation)) == set(MODELS.of_task("avvp"))
    assert set(avvp.model_fields) - {"name"} == set(declarations(task="avvp")["han"])


def _edrnet(**changes) -> dict:
    params = copy.deepcopy(DEFAULTS)
    params["model"].update(name="edrnet", **changes)
    return params


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"kernel": 6}, "model.kernel: expected an integer ≥ 2 and ≤ 5 for model edrnet, found 6"),
        (
            {"branches": ["a", "a"]},
            "model.branches: expected distinct branches including 'a' or 'v' for model edrnet, "
            "found ['a', 'a']",
        ),
        (
            {"branches": ["av"]},
            "model.branches: expected distinct branches including 'a' or 'v' for model edrnet, "
            "found ['av']",
        ),
        ({"visual_kernel": 2}, "model.visual_kernel: Input should be 1, 3, 5 or 7, found 2"),
    ],
)
def test_each_key_is_checked_against_the_model_that_reads_it(changes, expected):
    with pytest.raises(PipelineError) as info:
        validate_params(_edrnet(**changes), ("model",))
    assert str(info.value) == f"params.yaml: {expected}"
    # the same values pass when the chosen model does not read them (dpnet: kernel >= 2)
    params = _edrnet(**changes)
    params["model"]["name"] = "dpnet"
    if "visual_kernel" not in changes:
        assert validate_params(params, ("model",))["model"]["name"] == "dpnet"


@pytest.mark.parametrize(
    ("model", "match"),
    [
        ({"name": "foo"}, "model.name: unknown model 'foo'; valid names: ave, cmran, dpnet"),
        ({"name": "edrnet", "kernel": 3, "layers": 5}, r"model.layers: expected .* \[1, 4\]"),
        ({"name": "edrnet", "kernel": 5, "layers": 4}, r"model.layers: expected .* \[1, 2\]"),
    ],
)
def test_model_section_is_checked_against_the_constructor(model, match):
    name = model.pop("name")
    with pytest.raises(PipelineError, match=match):
        check_model(name, model)


@pytest.mark.parametrize("path", sorted((ROOT / "presets").glob("*")))
def test_defaults_and_presets_pass_the_schema(path):
    model = dict(load_params(ALL, ROOT / "params.yaml")["model"])
    check_model(model.pop("name"), model)
    model = dict(preset_params(path, ROOT / "params.yaml")["model"])
    check_model(model.pop("name"), model)


def test_the_parameter_reference_is_generated_from_the_schema():
    assert readme_block((ROOT / REFERENCE).read_text()) == markdown_reference()


def test_params_yaml_holds_every_registered_models_keys():
    # `dvc exp run -S model.<key>=...` refuses a key that is not in the file
    for task in MODEL_TASKS:  # and -S avvp.model.<key>=... (the AVVP models' section)
        assert missing_model_keys((ROOT / "params.yaml").read_text(), task) == {}, (
            "run `python -m pipeline.config.schema --write`"
        )


def test_missing_avvp_model_keys_are_appended_to_avvp_model_only():
    text = (
        "model:\n  name: ave\navvp:\n  source: synthetic\n  model:  # AVVP\n    name: han\n"
        "    hidden: 64\n\n  train:\n    epochs: 2\ntrain:\n  seed: 0\n"
    )
    out = with_model_keys(text, "avvp")
    assert out.startswith("model:\n  name: ave\navvp:\n  source: synthetic\n  model:  # AVVP\n")
    assert out.endswith("\n\n  train:\n    epochs: 2\ntrain:\n  seed: 0\n")
    avvp = yaml.safe_load(out)["avvp"]["model"]
    assert avvp["hidden"] == 64 and avvp["heads"] == keyword_defaults(MODELS["han"])["heads"]
    assert set(avvp) == {"name", *declarations(task="avvp")["han"]}
    assert "    share_layers: true" in out and "# han: " in out
    assert with_model_keys(out, "avvp") == out
    assert missing_model_keys(text, "avel") == missing_model_keys(out, "avel")  # model untouched


def test_missing_model_keys_are_appended_to_the_model_section_only():
    text = "data:\n  source: synthetic\nmodel:  # flat\n  name: ave\n\ntrain:\n  seed: 0\n"
    out = with_model_keys(text)
    assert out.startswith("data:\n  source: synthetic\nmodel:  # flat\n  name: ave\n  ")
    assert out.endswith("\ntrain:\n  seed: 0\n")
    model = yaml.safe_load(out)["model"]
    assert model["blocks"] == keyword_defaults(MODELS["dpnet"])["blocks"]
    assert model["psp_network"] == "full" and model["branches"] == ["a", "v", "av"]
    assert set(model) == {"name"} | {k for keys in declarations().values() for k in keys}
    assert "  blocks: 4 " in out and "# dpnet" in out  # each line says who reads the key
    assert with_model_keys(out) == out


def test_misspellings_get_the_closest_valid_names():
    with pytest.raises(
        PipelineError, match=r"train.epohcs: unknown key \(did you mean 'epochs'\?\)"
    ):
        validate_params(_with("train.epohcs", 3), ("train",))
    with pytest.raises(PipelineError, match=r"section\(s\) trian \(did you mean 'train'\?\)"):
        validate_params({**DEFAULTS, "trian": {}}, ())
    with pytest.raises(PipelineError, match=r"found 'dpnte' \(did you mean 'dpnet'"):
        validate_params(_with("model.name", "dpnte"), ("model",))


def test_every_stage_refuses_an_unknown_model_name_whatever_it_reads():
    # the first stage of a repro (download, always run) stops before DVC deletes any outputs
    with pytest.raises(
        PipelineError, match=r"params.yaml: model.name: unknown model 'dpnte' \(did you mean"
    ):
        validate_params(_with("model.name", "dpnte"), ("data",))
    validate_params(_with("model.name", "edrnet"), ("data",))


def test_load_params_errors_name_the_file(tmp_path):
    with pytest.raises(PipelineError, match="not found"):
        load_params(path=tmp_path / "params.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(PipelineError, match="bad.yaml: not valid YAML"):
        load_params(path=bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n")
    with pytest.raises(PipelineError, match="expected a mapping of sections, found int"):
        load_params(path=scalar)


@pytest.mark.parametrize(
    ("stage", "key", "value"),
    [
        (["stages.download"], "data.synthetic.n_test", 0),
        (["stages.augment"], "augment.replicas_per_video", 0),
        (["stages.train", "sel"], "train.epochs", 0),
        (["stages.train", "wsel"], "refine.window", 6),
        (["stages.refine"], "refine.tau", 2),
        (["stages.retrain"], "model.kernel", 1),
        (["stages.evaluate", "sel"], "evaluate.batch_size", 0),
        (["stages.predict", "video.mp4"], "predict.b2ilc", "yes"),
    ],
)
def test_a_stage_with_a_bad_value_exits_with_one_line_and_writes_nothing(
    tmp_path, stage, key, value
):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_with(key, value)))
    result = subprocess.run(
        [sys.executable, "-m", *stage],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: params.yaml: {key}: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_the_stages_that_build_no_avvp_model_check_avvp_without_importing_a_model():
    code = (
        "import sys; from pipeline.config.params import load_params; "
        "p = load_params(('avvp',), with_model=False); "
        "print(p['avvp']['model']['name'], 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.split() == ["han", "False"], out.stderr
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["avvp"]["model"]["hiden"] = 8  # not checked here: the stages that build it do
    params["avvp"]["synthetic"]["n_train"] = 0  # checked
    with pytest.raises(PipelineError, match=r"avvp\.synthetic\.n_train") as err:
        validate_params(params, ("avvp",), with_model=False)
    assert "hiden" not in str(err.value)
    with pytest.raises(PipelineError, match=r"avvp\.model\.hiden: unknown key"):
        validate_params(params, ("avvp",))
