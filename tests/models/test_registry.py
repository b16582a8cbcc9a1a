"""The registry imports a model's module on lookup, so a model file is a dependency of its
own experiments only (docs/design.md §4, §8)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.models import MODELS, AVELModel, code_fingerprint, model_class, model_files, register
from tests.test_e2e import _dvc, _run

ROOT = Path(__file__).resolve().parents[2]
COPIED = ["params.yaml", "pipeline", "stages", ".dvc", ".dvcignore", ".gitignore"]


def test_importing_the_registry_imports_no_model_and_a_lookup_one():
    code = (
        "import sys; from pipeline.models import MODELS, model_class\n"
        "models = lambda: sorted(m for m in sys.modules if m.startswith('pipeline.models.'))\n"
        "print(models()); model_class('psp'); print(models()); print(len(list(MODELS)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "['pipeline.models.base']"
    lookup = ["pipeline.models.base", "pipeline.models.checks", "pipeline.models.map_layers"]
    assert out[1] == str([*lookup, "pipeline.models.psp"])
    assert int(out[2]) >= 12


def test_the_index_read_from_the_files_is_what_the_modules_register():
    index = MODELS.index()
    assert index["dpnet"] == index["rgat"] == "pipeline.models.dpnet"
    for name, module in index.items():
        assert model_class(name).__module__ == module
    from_package = {n for n, c in MODELS.loaded().items() if c.__module__.startswith("pipeline.")}
    assert from_package == set(index)


def test_a_package_model_must_register_a_literal_name():
    class Hidden(AVELModel):
        __module__ = "pipeline.models.psp"  # as if psp.py registered it by a variable

        def forward(self, audio, visual):
            return audio

    with pytest.raises(TypeError, match="string literal"):
        register("hidden_name")(Hidden)
    assert "hidden_name" not in MODELS


def test_an_unknown_model_names_the_valid_ones():
    with pytest.raises(PipelineError, match=r"unknown model 'removed'; valid names: ave, cmran"):
        model_class("removed")


def test_a_model_runs_its_own_files_and_the_shared_layers_it_imports():
    dpnet, psp = set(model_files("dpnet", ROOT)), set(model_files("psp", ROOT))
    layers = {f"pipeline/models/{m}.py" for m in ("dpnet", "dpnet_layers", "graph", "rgct")}
    assert layers <= dpnet
    assert "pipeline/models/psp.py" not in dpnet
    assert layers & psp == set() and "pipeline/models/psp.py" in psp
    assert {"pipeline/models/base.py", "pipeline/models/__init__.py"} <= dpnet & psp
    assert '"model": "psp"' in code_fingerprint("psp", ROOT)


# ------------------------------------------------------------- in a temporary project

MINE = '''"""A new model, one file."""

import torch
from torch import nn

from pipeline.models.base import AVELModel, register


@register("mine")
class Mine(AVELModel):
    """Linear scores of the audio features."""

    def __init__(self, audio_dim: int = 128, n_classes: int = 29) -> None:
        super().__init__()
        self.linear = nn.Linear(audio_dim, n_classes)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        return self.linear(audio)  # (B, T, C)
'''


def _commit(cwd: Path, message: str) -> str:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    _run([*git, "add", "-A"], cwd)
    _run([*git, "commit", "-qm", message], cwd)
    return _run(["git", "rev-parse", "HEAD"], cwd).stdout.strip()


def _edit(path: Path) -> None:
    path.write_text(path.read_text() + "# edited\n")


@pytest.fixture
def project(tmp_path) -> Path:
    """The pipeline's code and its model_code stage, with a stage that builds the model."""
    import shutil

    repo = tmp_path / "repo"
    repo.mkdir()
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, repo / name)
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    build = "import shutil; shutil.copy('data/model_code.json', 'data/built.json')"
    dvc_yaml = {
        "stages": {
            "model_code": stages["model_code"],
            "train": {  # as the training stages: depends on the fingerprint, no model file
                "cmd": f'python -c "{build}"',
                "deps": ["data/model_code.json"],
                "outs": ["data/built.json"],
            },
        }
    }
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False))
    _run(["git", "init", "-q"], repo)
    _commit(repo, "pipeline")
    return repo


def _reusable(repo: Path) -> set[str]:
    code = (
        "from pipeline.experiments.reuse import head, reusable_experiments\n"
        "print(' '.join(sorted(reusable_experiments(head()))))"
    )
    return set(_run([sys.executable, "-c", code], repo).stdout.split())


@pytest.mark.e2e
def test_a_new_or_edited_model_file_reruns_only_its_own_experiments(project):
    models = project / "pipeline" / "models"
    assert "Running stage 'train'" in _dvc(project, "repro").stdout
    _commit(project, "dvc.lock")
    _dvc(project, "exp", "run", "-n", "ps", "-S", "model.name=psp")
    _run(["git", "checkout", "params.yaml"], project)  # exp run left model.name=psp there
    _dvc(project, "exp", "run", "-n", "dp")
    # a new model file and an edit of another model: DPNet's stage stays clean
    (models / "mine.py").write_text(MINE)
    _edit(models / "psp.py")
    assert "Stage 'train' didn't change, skipping" in _dvc(project, "repro").stdout
    assert "train" not in _dvc(project, "status").stdout
    _commit(project, "a new model and an edit of psp")
    # DPNet's experiment of the earlier commit is still served; PSP's is not
    assert _reusable(project) == {"dp"}
    # the new model runs (its name known without a registry edit)
    assert (
        "Running stage 'train'"
        in _dvc(project, "exp", "run", "-n", "mi", "-S", "model.name=mine").stdout
    )
    # a shared layer DPNet imports, not Mine: Mine's stage is clean, DPNet's reruns ...
    _edit(models / "graph.py")
    assert "Stage 'train' didn't change, skipping" in _dvc(project, "repro").stdout
    _run(["git", "checkout", "params.yaml"], project)  # back to model.name=dpnet
    assert "Running stage 'train'" in _dvc(project, "repro").stdout
    # ... and its experiment of an earlier commit is no longer served; Mine's still is
    _commit(project, "an edit of a shared layer")
    assert _reusable(project) == {"mi"}
    # a removed model: a clear error naming the valid ones
    (models / "psp.py").unlink()
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["model"]["name"] = "psp"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    failed = _run([sys.executable, "-m", "stages.model_code"], project, check=False)
    assert failed.returncode != 0
    assert "model.name" in failed.stderr and "dpnet" in failed.stderr and "mine" in failed.stderr
