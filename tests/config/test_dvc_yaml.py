"""dvc.yaml declares, per stage, exactly the code files the stage imports."""

from pathlib import Path

import pytest
import yaml

from pipeline.config import paths
from pipeline.config.imports import local_imports, with_code_deps
from pipeline.config.params import (
    AUGMENT_BUILD_KEYS,
    AUGMENT_TRAIN_KEYS,
    DOWNLOAD_KEYS,
    REFINE_LABEL_KEYS,
    REFINE_RETRAIN_KEYS,
    REFINE_TRAIN_KEYS,
    SYNTHESIZE_KEYS,
)
from pipeline.experiments.ablations import stage_targets
from stages import refine

ROOT = Path(__file__).resolve().parents[2]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _script_and_deps(stage: dict) -> tuple[str, set[str]]:
    body = stage.get("do", stage)
    module = body["cmd"].split()[2]  # python -m stages.<name>
    script = module.replace(".", "/") + ".py"
    deps = {d for d in body["deps"] if d.endswith(".py")}
    return script, deps


@pytest.mark.parametrize("name", sorted(STAGES))
def test_deps_are_listed_once(name):
    deps = STAGES[name].get("do", STAGES[name])["deps"]
    assert len(deps) == len(set(deps))


@pytest.mark.parametrize("name", sorted(STAGES))
def test_code_deps_are_exactly_the_imported_files(name):
    script, deps = _script_and_deps(STAGES[name])
    assert deps == set(local_imports(script, ROOT))


def test_local_imports_follows_imports_transitively(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from pkg import b\nimport os\n")
    (tmp_path / "pkg" / "b.py").write_text("from pkg.c import thing\n")
    (tmp_path / "pkg" / "c.py").write_text("thing = 1\n")
    (tmp_path / "pkg" / "unused.py").write_text("")
    (tmp_path / "main.py").write_text("import pkg.a\n")
    assert local_imports("main.py", tmp_path) == [
        "main.py",
        "pkg/__init__.py",
        "pkg/a.py",
        "pkg/b.py",
        "pkg/c.py",
    ]
    # `python -m stages.x` runs stages/__init__.py and what it imports before stages/x.py
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "__init__.py").write_text("from pkg import c\n")
    (tmp_path / "stages" / "x.py").write_text("")
    assert local_imports("stages/x.py", tmp_path) == [
        "pkg/__init__.py",
        "pkg/c.py",
        "stages/__init__.py",
        "stages/x.py",
    ]


def test_code_deps_are_generated_and_have_not_drifted():
    text = (ROOT / "dvc.yaml").read_text()
    assert with_code_deps(text, ROOT) == text  # else: python -m pipeline.config.imports --write


def test_generated_code_deps_replace_only_the_py_entries(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "a.py").write_text("import stages.b\n")
    (tmp_path / "stages" / "b.py").write_text("")
    text = (
        "stages:\n  a:\n    cmd: python -m stages.a\n    deps:\n      - data/x\n"
        "      - stages/old.py\n    outs:\n      - data/y\n"
    )
    assert with_code_deps(text, tmp_path) == text.replace(
        "      - stages/old.py\n", "      - stages/a.py\n      - stages/b.py\n"
    )


def test_a_lazy_import_inside_a_function_is_not_followed(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "model.py").write_text("def f():\n    import pkg.lazy\n")
    (tmp_path / "pkg" / "lazy.py").write_text("")
    (tmp_path / "main.py").write_text("import pkg.model\n")
    assert local_imports("main.py", tmp_path) == ["main.py", "pkg/__init__.py", "pkg/model.py"]


BUILD_A_MODEL = ["train_sel", "train_wsel", "refine", "retrain_wsel", "evaluate"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_no_stage_depends_on_a_model_file_but_the_registry(name):
    # the registry imports a model's module when its name is looked up (docs/design.md §8)
    _, deps = _script_and_deps(STAGES[name])
    models = {d for d in deps if d.startswith("pipeline/models/")}
    # the registry, the contract and its checks; graph.py: the SEL objective links graphs
    shared = ("__init__", "base", "checks", "graph")
    assert models <= {f"pipeline/models/{stem}.py" for stem in shared}


@pytest.mark.parametrize("name", BUILD_A_MODEL)
def test_stages_building_a_model_depend_on_its_code_fingerprint(name):
    assert str(paths.MODEL_CODE) in STAGES[name].get("do", STAGES[name])["deps"]
    assert _outs("model_code") == {str(paths.MODEL_CODE): {}}
    assert STAGES["model_code"]["always_changed"] is True


def _keys(section: str, keys) -> list[str]:
    return [f"{section}.{key}" for key in keys]


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("synthesize", _keys("data", SYNTHESIZE_KEYS)),
        ("download", _keys("data", DOWNLOAD_KEYS)),
        ("pool", None),
        ("database", None),
        ("augment", _keys("augment", AUGMENT_BUILD_KEYS)),
        ("model_code", ["model.name"]),
        ("train_sel", ["model", "train", *_keys("augment", AUGMENT_TRAIN_KEYS)]),
        ("train_wsel", ["model", "train", *_keys("refine", REFINE_TRAIN_KEYS)]),
        ("refine", [*_keys("refine", REFINE_LABEL_KEYS), *_keys("train", refine.TRAIN_READ)]),
        ("retrain_wsel", ["model", "train", *_keys("refine", REFINE_RETRAIN_KEYS)]),
        ("evaluate", ["evaluate", "train.deterministic_cpu"]),
        ("report", None),
    ],
)
def test_stages_declare_exactly_the_params_they_read(name, params):
    body = STAGES[name].get("do", STAGES[name])
    assert body.get("params") == params


def test_every_stage_has_its_params_test():
    assert set(STAGES) == {
        "synthesize",
        "download",
        "pool",
        "database",
        "augment",
        "model_code",
        "train_sel",
        "train_wsel",
        "refine",
        "retrain_wsel",
        "evaluate",
        "report",
        # the AVVP task's stages: their params test is in tests/avvp/test_stages.py
        "avvp_model_code",
        "avvp_synthesize",
        "avvp_download",
        "avvp_train",
        "avvp_refine",
        "avvp_retrain",
        "avvp_evaluate",
    }


def test_metrics_are_not_cached():
    for stage in STAGES.values():
        for entry in stage.get("do", stage).get("metrics", []):
            ((_, options),) = entry.items()
            assert options["cache"] is False


def _outs(name: str) -> dict[str, dict]:
    body = STAGES[name].get("do", STAGES[name])
    return {k: v for entry in body.get("outs", []) for k, v in _entry(entry).items()}


def _entry(entry) -> dict[str, dict]:
    return {entry: {}} if isinstance(entry, str) else entry


def test_generated_data_is_cached_and_linked_data_is_not():
    # DVC's cache restores these by link in a queued experiment's fresh workspace ...
    assert _outs("synthesize") == {str(paths.SYNTHETIC): {}}
    assert _outs("pool") == {str(paths.POOLED): {}}
    # ... but the store is no output at all: DVC would hash its 8.7 GB in every fresh
    # workspace, and caching it would copy a user's files across file systems
    assert _outs("download") == {}
    assert STAGES["download"]["always_changed"] is True  # so that an edited file is caught


def test_no_stage_names_the_store_the_manifest_stands_for_it():
    for name, stage in STAGES.items():
        body = stage.get("do", stage)
        avvp = name.startswith("avvp_")  # the AVVP task: data/llp and its manifest
        store, manifest = (
            (paths.LLP_STORE, paths.AVVP_DOWNLOAD_METRICS)
            if avvp
            else (
                paths.STORE,
                paths.DOWNLOAD_METRICS,
            )
        )
        assert str(store) not in body.get("deps", []), name
        if name not in {
            "synthesize",
            "download",
            "report",
            "model_code",
            "avvp_model_code",
            "avvp_synthesize",
            "avvp_download",
        }:
            assert str(manifest) in body["deps"], name  # report reads metrics only


@pytest.mark.parametrize("name", ["train_sel", "train_wsel", "refine", "retrain_wsel", "evaluate"])
def test_stages_feeding_models_depend_on_the_pooled_features(name):
    deps = STAGES[name].get("do", STAGES[name])["deps"]
    assert {str(paths.DOWNLOAD_METRICS), str(paths.POOLED)} <= set(deps)


def test_every_stage_of_dvc_lock_exists_in_dvc_yaml():
    # a stage removed from dvc.yaml leaves its entry in dvc.lock until removed by hand
    locked = set(yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"])
    declared = stage_targets({"stages": STAGES})
    assert locked - declared == set(), f"dvc.lock: stages not in dvc.yaml: {locked - declared}"
    assert locked == declared  # and the committed lock covers every stage
