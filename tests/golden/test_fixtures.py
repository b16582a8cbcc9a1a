"""The golden fixtures themselves: each names its official commit, and they stay small.

They are made by ``tools/official/make_fixtures.py`` from checkouts of the official
repositories (see its docstring); these tests read only the files.
"""

import importlib.util
import re
from pathlib import Path

import pytest

from tests.golden.common import FIXTURES, REPOS, load, weights_of

SHA = re.compile(r"^[0-9a-f]{40}$")


@pytest.mark.parametrize("name", sorted(REPOS))
def test_fixture_names_its_official_repository_and_commit(name):
    meta, arrays = load(name)
    assert meta["repo"] == REPOS[name]
    assert SHA.match(meta["commit"]), f"{name}: commit {meta['commit']!r} is not a sha"
    assert meta["torch"]  # the torch that ran the official code
    assert arrays


def test_every_fixture_is_there_and_all_of_them_take_a_few_mb():
    assert sorted(p.stem for p in FIXTURES.glob("*.npz")) == sorted(REPOS)
    total = sum(p.stat().st_size for p in FIXTURES.glob("*.npz"))
    assert total < 3e6, f"fixtures take {total / 1e6:.1f} MB"


def test_the_weights_drawn_again_are_the_official_run_s():
    meta, _ = load("psp_weak")
    assert len(weights_of(meta)) == len(meta["weights"])
    meta["weights_sha256"] = "0" * 64
    with pytest.raises(AssertionError, match="sha256"):
        weights_of(meta)


def _script():
    path = Path(__file__).resolve().parents[2] / "tools" / "official" / "make_fixtures.py"
    spec = importlib.util.spec_from_file_location("make_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fixture_script_refuses_to_run_without_a_checkout(tmp_path):
    script = _script()
    with pytest.raises(SystemExit, match="at least one checkout"):
        script.main(["--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="expected a checkout folder"):
        script.main(["--ave", str(tmp_path / "absent"), "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="--commit ave=<sha>"):
        script.main(["--ave", str(tmp_path), "--out", str(tmp_path)])
    assert not list(tmp_path.glob("*.npz"))
