"""Shared fixtures: a tiny synthetic AVE store and helpers to mutate copies of it."""

import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from pipeline.config.schema import Train, validate_params
from pipeline.data.pooled import pool_store
from pipeline.data.synthetic import generate_synthetic
from pipeline.models import build_model

# Small enough that generating and reading the store takes a few tens of milliseconds.
TINY_STORE_KWARGS = {
    "n_train": 40,
    "n_val": 10,
    "n_test": 10,
    "n_background": 5,
    "seed": 0,
    "audio_dim": 6,
    "visual_dim": 8,
    "map_size": 3,
}

# Location of the small real AVE files (skipped by the tests that use it when absent).
AVE_REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "ave-reference"


@pytest.fixture(scope="session")
def ave_reference() -> Path:
    """The small real AVE files of ``../shared/ave-reference``; skips the test when absent."""
    if not (AVE_REFERENCE / "Annotations.txt").is_file():
        pytest.skip(f"real AVE reference files absent ({AVE_REFERENCE})")
    return AVE_REFERENCE


@pytest.fixture(scope="session")
def reference_segment_labels(ave_reference: Path) -> np.ndarray:
    """``(4143, 10)`` segment classes of the real release: the video's class where foreground.

    Built from ``labels_closs.h5`` (1 = foreground) and ``mil_labels.h5`` (video one-hot).
    """
    with (
        h5py.File(ave_reference / "labels_closs.h5") as closs,
        h5py.File(ave_reference / "mil_labels.h5") as mil,
    ):
        foreground = closs["avadataset"][()] == 1
        video_class = mil["avadataset"][()].argmax(axis=1)
    return np.where(foreground, video_class[:, None], 28)


@pytest.fixture(scope="session")
def tiny_store_kwargs() -> dict:
    """The arguments of :func:`generate_synthetic` that made ``tiny_store`` (a copy)."""
    return dict(TINY_STORE_KWARGS)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide tiny synthetic store (60 videos + 5 background). Do not modify it."""
    root = tmp_path_factory.mktemp("tiny_store") / "ave"
    generate_synthetic(root, **TINY_STORE_KWARGS)
    return root


@pytest.fixture
def tiny_ave_model() -> torch.nn.Module:
    """A small AVE baseline, seeded, in evaluation mode, at ``tiny_store``'s sizes (3x3 maps)."""
    torch.manual_seed(0)
    model = build_model(
        "ave", audio_dim=6, visual_dim=8, n_regions=9, hidden=8, attention_dim=4,
        classifier_hidden=8,
    )  # fmt: skip
    return model.eval()


@pytest.fixture(scope="session")
def tiny_pooled(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pooled features of ``tiny_store`` (the pool stage's output). Do not modify it."""
    out = tmp_path_factory.mktemp("tiny_pooled") / "pooled"
    pool_store(tiny_store, out)
    return out


@pytest.fixture(autouse=True)
def _private_user_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """Keep the user cache (downloads, file ledger) of stages under test out of ``~``."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "user_cache"))


@pytest.fixture
def copy_store(tiny_store: Path, tmp_path: Path) -> Callable[[], Path]:
    """Return a function that copies ``tiny_store`` into ``tmp_path`` for mutation."""
    counter = iter(range(1_000_000))

    def make() -> Path:
        dest = tmp_path / f"store_{next(counter)}"
        shutil.copytree(tiny_store, dest)
        return dest

    return make


@pytest.fixture
def store_copy(copy_store: Callable[[], Path]) -> Path:
    """A private, mutable copy of ``tiny_store``."""
    return copy_store()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the files with end-to-end tests (``@pytest.mark.e2e``) first, the file with the
    most of them first of all (``tests/test_e2e.py``, the longest), each file's tests in
    their order, and skip the tests marked ``cuda`` on a machine without a CUDA device.

    pytest-xdist's ``--dist loadfile --no-loadscope-reorder``, as ``make test`` runs it,
    hands out files in this order, so the long files start at once instead of ending the
    run alone; without ``--no-loadscope-reorder`` xdist sorts the files by their number of
    tests, and the long files, which have few, came last."""
    e2e = Counter(item.path for item in items if item.get_closest_marker("e2e"))
    items.sort(key=lambda item: -e2e[item.path])  # stable: each file's order is kept
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (bench/gpu_check.sh runs these)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def train_config(**changes) -> Train:
    """The default ``train`` section of ``params.yaml`` with ``changes``, checked."""
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    return validate_params({"train": {**params["train"], **changes}}, ("train",), typed=True)[
        "train"
    ]
