"""The model index and fingerprint read from the files: equal to the registry's, torch-free."""

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config.model_index import indexed_code_fingerprint, model_index
from pipeline.errors import PipelineError
from pipeline.models import MODELS, code_fingerprint

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(model_index()))
def test_the_fingerprint_read_from_the_files_equals_the_imported_models(name):
    assert indexed_code_fingerprint(name, ROOT) == code_fingerprint(name, ROOT)
    assert MODELS.index()[name] == model_index()[name]


def test_an_unknown_name_lists_the_registered_ones():
    with pytest.raises(PipelineError, match=r"unknown model 'dpnte'; registered: .*\bdpnet\b"):
        indexed_code_fingerprint("dpnte", ROOT)


def test_two_files_registering_one_name_are_refused(tmp_path):
    for stem in ("a", "b"):
        (tmp_path / f"{stem}.py").write_text('@register("same")\nclass M:\n    pass\n')
    with pytest.raises(TypeError, match="'same' is registered in pkg.a and pkg.b"):
        model_index(tmp_path, "pkg")


def test_the_model_code_stage_imports_neither_torch_nor_a_model():
    loaded = "sorted(m for m in sys.modules if m.startswith(('torch', 'pipeline.models')))"
    code = f"import sys, stages.model_code; print({loaded})"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
