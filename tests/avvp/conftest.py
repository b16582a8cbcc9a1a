"""Shared fixtures of the AVVP tests: a tiny synthetic LLP store and the real annotations."""

import shutil
from pathlib import Path

import pytest
import torch

from pipeline.avvp.synthetic import generate_llp

# Small enough that generating the store takes a fraction of a second.
TINY_LLP_KWARGS = {
    "n_train": 24,
    "n_val": 6,
    "n_test": 8,
    "seed": 0,
    "audio_dim": 8,
    "frame_dim": 12,
    "snippet_dim": 6,
}
LLP_REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "llp-reference"


@pytest.fixture(scope="session")
def tiny_llp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic LLP store (read-only by convention; copy it to change it)."""
    root = tmp_path_factory.mktemp("llp") / "store"
    generate_llp(root, **TINY_LLP_KWARGS)
    return root


@pytest.fixture
def llp_copy(tiny_llp: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny store, free to break."""
    return Path(shutil.copytree(tiny_llp, tmp_path / "store"))


@pytest.fixture(scope="session")
def llp_reference() -> Path:
    """The real LLP annotation files of ``../shared/llp-reference``; skips when absent."""
    if not (LLP_REFERENCE / "AVVP_train.csv").is_file():
        pytest.skip(f"real LLP reference files absent ({LLP_REFERENCE})")
    return LLP_REFERENCE


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread (and do not fight the other test processes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
