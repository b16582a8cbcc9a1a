"""The documentation builds, and its commands work as written.

- ``mkdocs build --strict`` passes: a dead link, a missing page or a broken API reference
  fails the suite.
- Every fenced ``bash`` block of the README and of ``docs/getting-started.md`` is marked
  ``<!-- runnable -->`` or ``<!-- not-runnable: why -->`` on the line before it.
- Every runnable block is run, as written, in document order, in a copy of the project
  (git + DVC) whose ``params.yaml`` is shrunk to a tiny store and whose ``dvc repro`` has
  run (what ``make repro`` does after the install): the project of ``tests/test_e2e.py``,
  whose last test calls :func:`run_documented_commands`, so that the repro is shared. A
  runnable ``python`` block whose first line is ``# <path>`` is written to that path (the
  README's model and its test). After each bash block the tracked files are checked out
  again (``git checkout -- .``), so that each section starts from the committed project,
  as a reader starting that section would; the files it created and the commits it made
  stay.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/getting-started.md"]  # the pages whose commands are all run
EXTRA = ["ablations.yaml", "presets", "tests", "pyproject.toml", "docs", "cluster.yaml"]
MARKER = re.compile(r"<!-- (runnable|not-runnable: [^>]+) -->\n```(\w+)\n(.*?)```", re.S)
FENCE = re.compile(r"^```(bash|python)\n", re.M)


def blocks(page: str) -> list[tuple[str, str, str]]:
    """``(marker, language, text)`` of each marked fenced block of ``page``, in order."""
    text = (ROOT / page).read_text()
    return [match.groups() for match in MARKER.finditer(text)]


def test_mkdocs_builds_strict(tmp_path):
    result = _mkdocs(ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "AVELModel" in api and "video_probabilities" in api  # the model contract
    assert "stages.train" in api and "load_ablations" in api  # the stages, the tables


def _mkdocs(root: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        # not -q: it hides the warnings that --strict counts
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


def test_a_dead_link_or_anchor_fails_the_build(tmp_path):
    for name in ("docs", "pipeline", "stages"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__py*"))
    shutil.copy2(ROOT / "mkdocs.yml", tmp_path)
    with (tmp_path / "docs" / "index.md").open("a") as index:
        index.write("\n[gone](data.md#no-such-heading)\n")
    result = _mkdocs(tmp_path, tmp_path / "site")
    assert result.returncode != 0
    assert "does not contain an anchor '#no-such-heading'" in result.stderr


@pytest.mark.parametrize("page", PAGES)
def test_every_bash_block_is_marked(page):
    text = (ROOT / page).read_text()
    fences = [m.start() for m in FENCE.finditer(text) if m.group(1) == "bash"]
    marked = [m.start(2) - len("```") for m in MARKER.finditer(text) if m.group(2) == "bash"]
    unmarked = [text.count("\n", 0, start) + 1 for start in fences if start not in marked]
    assert not unmarked, f"{page}: bash blocks without a runnable marker at lines {unmarked}"
    assert any(marker == "runnable" for marker, _, _ in blocks(page))


def _env(project: Path) -> dict:
    identity = {
        f"GIT_{who}_{what}": value
        for who in ("AUTHOR", "COMMITTER")
        for what, value in (("NAME", "reader"), ("EMAIL", "reader@example.org"))
    }
    return {
        **os.environ,
        **identity,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": "1",
        "XDG_CACHE_HOME": str(project.parent / "user_cache"),
    }


def _shell(command: str, project: Path) -> str:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=project,
        env=_env(project),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"$ {command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def run_documented_commands(project: Path) -> None:
    """Run every runnable block of :data:`PAGES` in ``project``, a committed tiny project
    after its first ``dvc repro`` (``tests/test_e2e.py``'s, whose last test calls this)."""
    for name in EXTRA:  # what the documented commands read besides the pipeline
        source = ROOT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "site")
            shutil.copytree(source, project / name, ignore=ignore, dirs_exist_ok=True)
        else:
            shutil.copy2(source, project / name)
    _shell("git add -A && git commit -qm 'the documented files'", project)
    outputs = {}
    for page in PAGES:
        for marker, language, text in blocks(page):
            if marker != "runnable":
                continue
            if language == "python":
                target = text.splitlines()[0].removeprefix("# ").strip()
                assert not (project / target).exists(), f"{page}: {target} exists already"
                (project / target).write_text(text)
                continue
            start = time.perf_counter()
            outputs[text] = _shell(text, project)
            _shell("git checkout -q -- .", project)
            print(f"{page}: {time.perf_counter() - start:.0f} s: {text.splitlines()[0]}")
    printed = "\n".join(outputs.values())
    assert "model.width" in printed  # schema --write added the new model's key
    assert "dpnet-t2" in printed and "tlr-t6" in printed  # tables list
    assert (project / "reports" / "tables" / "tlr-t6.md").is_file()
    assert (project / "reports" / "site" / "index.html").is_file()
    assert (project / "dvc_plots" / "index.html").is_file()
    committed = yaml.safe_load((project / "params.yaml").read_text())["model"]
    assert committed["width"] == 16  # the constructor's default, committed by the reader
    assert "model: mlp" in _shell("git log -1 --format=%s", project)
