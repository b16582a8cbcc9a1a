"""The file ledger: facts kept per file identity; unchanged files are not read again."""

import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.data import sources, store
from pipeline.data.ledger import FileLedger, identity
from pipeline.data.sources import build_store, store_summary
from pipeline.errors import PipelineError


class Counting:
    """A ``compute`` for :meth:`FileLedger.fact` that counts its calls."""

    def __init__(self, value: str = "v") -> None:
        self.calls, self.value = 0, value

    def __call__(self) -> str:
        self.calls += 1
        return self.value


@pytest.fixture
def ledger(tmp_path) -> FileLedger:
    ledger = FileLedger(tmp_path / "cache" / "files.sqlite")
    yield ledger
    ledger.close()


def test_an_unchanged_file_is_read_once(tmp_path, ledger):
    (tmp_path / "f").write_bytes(b"abc")
    compute = Counting()
    assert ledger.fact(tmp_path / "f", "sha256", compute) == "v"
    assert ledger.fact(tmp_path / "f", "sha256", compute) == "v"
    assert compute.calls == 1
    assert ledger.fact(tmp_path / "f", "finite:avadataset", compute) == "v"  # another fact
    assert compute.calls == 2


def test_facts_outlive_the_process_and_are_shared_by_hard_links(tmp_path, ledger):
    (tmp_path / "f").write_bytes(b"abc")
    ledger.fact(tmp_path / "f", "sha256", Counting("first"))
    os.link(tmp_path / "f", tmp_path / "link in another workspace")
    again = FileLedger(ledger.path)
    compute = Counting("second")
    assert again.fact(tmp_path / "link in another workspace", "sha256", compute) == "first"
    assert compute.calls == 0
    again.close()


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.write_bytes(b"abd"),  # edited in place, same size: a new mtime
        lambda p: os.truncate(p, 1),  # truncated
        lambda p: (p.unlink(), p.write_bytes(b"abc")),  # replaced by a new file
        lambda p: os.utime(p, ns=(0, 0)),  # only the mtime changes: still re-read
    ],
)
def test_a_changed_file_is_read_again(tmp_path, ledger, change):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    os.utime(path, ns=(10**18, 10**18))  # a fixed mtime that the edit cannot share
    ledger.fact(path, "sha256", Counting("old"))
    change(path)
    compute = Counting("new")
    assert ledger.fact(path, "sha256", compute) == "new"
    assert compute.calls == 1


def test_a_failed_check_records_nothing(tmp_path, ledger):
    (tmp_path / "f").write_bytes(b"abc")

    def failing() -> str:
        raise PipelineError("bad file")

    with pytest.raises(PipelineError, match="bad file"):
        ledger.fact(tmp_path / "f", "finite:avadataset", failing)
    assert ledger.get(tmp_path / "f", "finite:avadataset") is None


def test_a_file_written_while_it_is_read_is_not_credited(tmp_path, ledger):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    os.utime(path, ns=(10**18, 10**18))

    def racing() -> str:
        path.write_bytes(b"abcdef")  # another process writes during the read
        return "of the old bytes"

    assert ledger.fact(path, "sha256", racing) == "of the old bytes"
    assert ledger.get(path, "sha256") is None


def test_identity_is_device_inode_size_and_mtime(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    stat = path.stat()
    assert identity(path) == (stat.st_dev, stat.st_ino, 3, stat.st_mtime_ns)


def test_an_unusable_ledger_file_falls_back_to_memory(tmp_path, capsys):
    (tmp_path / "not a dir").write_text("a file where the cache directory should be")
    ledger = FileLedger(tmp_path / "not a dir" / "files.sqlite")
    assert ledger.path == ":memory:"
    assert "not kept" in capsys.readouterr().err
    (tmp_path / "f").write_bytes(b"abc")
    assert ledger.fact(tmp_path / "f", "sha256", Counting()) == "v"


# ------------------------------------------------------------------ store validation


class Spy:
    """Counts the reads that validation and checksums make, by fact."""

    def __init__(self, ledger: FileLedger) -> None:
        self.ledger, self.computed = ledger, []

    def fact(self, path, fact, compute):
        def counted() -> str:
            self.computed.append((Path(path).name, fact))
            return compute()

        return self.ledger.fact(path, fact, counted)


def _summary(store_dir: Path, spy: Spy, synthetic: Path) -> dict:
    data = {"source": "synthetic"}
    info = build_store(store_dir, data, synthetic, spy)
    return store_summary(store_dir, "synthetic", info, spy)


def test_a_second_workspace_reads_no_feature_file_again(tmp_path, ledger, store_copy):
    spy = Spy(ledger)
    first = _summary(tmp_path / "one" / "data" / "ave", spy, store_copy)
    names = {p.name for p in store_copy.iterdir()}
    assert {name for name, fact in spy.computed if fact == "sha256"} == names
    assert (store.VISUAL, "finite:avadataset") in spy.computed
    spy.computed.clear()
    # a queued experiment's fresh workspace links the same files: nothing is read again
    second = _summary(tmp_path / "two" / "data" / "ave", spy, store_copy)
    assert spy.computed == []
    assert second == first  # metrics/download.json stays identical


def _write_row(path: Path, row: int, value: float) -> None:
    with h5py.File(path, "r+") as h5:
        data = h5[store.FEATURE_KEY]
        block = data[row]
        block.flat[0] = value
        data[row] = block


def test_an_edited_visual_file_is_caught_after_it_was_validated(tmp_path, ledger, store_copy):
    spy = Spy(ledger)
    _summary(tmp_path / "ave", spy, store_copy)
    _write_row(store_copy / store.VISUAL, 7, np.nan)  # an in-place edit of the source file
    with pytest.raises(PipelineError, match=r"visual_feature.h5 \[key 'avadataset'\]: .*row 7"):
        _summary(tmp_path / "ave", spy, store_copy)


def test_a_truncated_visual_file_is_caught_after_it_was_validated(tmp_path, ledger, store_copy):
    spy = Spy(ledger)
    _summary(tmp_path / "ave", spy, store_copy)
    path = store_copy / store.VISUAL
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(PipelineError, match="visual_feature.h5"):
        _summary(tmp_path / "ave", spy, store_copy)


def test_an_edited_file_gets_its_new_checksum(tmp_path, ledger, store_copy):
    spy = Spy(ledger)
    before = _summary(tmp_path / "ave", spy, store_copy)
    _write_row(store_copy / store.AUDIO, 3, 0.5)
    after = _summary(tmp_path / "ave", spy, store_copy)
    changed = {name for name in before["sha256"] if before["sha256"][name] != after["sha256"][name]}
    assert changed == {store.AUDIO}
    assert after["sha256"][store.AUDIO] == sources.sha256_file(store_copy / store.AUDIO)


def test_a_source_file_replaced_by_a_copy_is_validated_again(tmp_path, ledger, store_copy):
    spy = Spy(ledger)
    build_store(tmp_path / "ave", {"source": "synthetic"}, store_copy, spy)
    replacement = tmp_path / "visual copy"
    shutil.copy2(store_copy / store.VISUAL, replacement)  # same bytes and mtime, new inode
    os.replace(replacement, store_copy / store.VISUAL)
    spy.computed.clear()
    build_store(tmp_path / "ave", {"source": "synthetic"}, store_copy, spy)
    assert spy.computed == [(store.VISUAL, "finite:avadataset")]
