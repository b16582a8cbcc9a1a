"""Atomic writes of directories."""

import pytest

from pipeline.io import atomic_dir


def test_a_directory_is_replaced_whole_on_success(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_dir(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target and not any(tmp.iterdir())
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary left behind


def test_a_failure_leaves_the_previous_directory_and_no_temporary(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="stage failed"), atomic_dir(target) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("stage failed")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_missing_parent_is_created(tmp_path):
    with atomic_dir(tmp_path / "a" / "b") as tmp:
        (tmp / "x").write_text("x")
    assert (tmp_path / "a" / "b" / "x").read_text() == "x"
