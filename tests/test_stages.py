"""The database, augment, refine and retrain stages on a tiny store, outside DVC."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline import paths
from pipeline.augment.compositions import load_compositions
from pipeline.augment.database import load_database
from pipeline.checkpoint import save_checkpoint
from pipeline.data import store
from pipeline.errors import PipelineError
from pipeline.models import build_model
from pipeline.refine import load_slice_labels
from stages import augment, database, refine, retrain, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workspace(tiny_store, tmp_path, monkeypatch) -> dict:
    """A working directory holding ``data/ave`` (the tiny store) and tiny params."""
    shutil.copytree(tiny_store, tmp_path / paths.STORE)
    monkeypatch.chdir(tmp_path)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"].update({"hidden": 8, "blocks": 1})
    params["train"].update({"epochs": 1, "batch_size": 16, "device": "cpu"})
    params["augment"].update({"replicas_per_video": 3, "smb_per_class": 2})
    return params


def _read(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _base_model() -> None:
    kwargs = {"audio_dim": 6, "visual_dim": 8, "hidden": 8, "blocks": 1}
    model = build_model("dpnet", **kwargs)
    save_checkpoint(paths.checkpoint("wsel"), model.state_dict(), "dpnet", kwargs, epoch=1)


def test_database_and_augment_write_consistent_indices(workspace):
    database.main()
    counts = _read(paths.DATABASE_METRICS)
    subevents, states = load_database(paths.SUBEVENTS), load_database(paths.STATES)
    assert counts["subevents"]["records"] == len(subevents)
    assert counts["states"]["records"] == len(states)
    rows = store.split_order(paths.STORE, "train")
    assert set(subevents.video.tolist()) <= set(rows.tolist())  # training split only
    augment.main(workspace)
    replicas, fused = load_compositions(paths.REPLICAS), load_compositions(paths.SMB)
    labels = store.segment_labels(paths.STORE)
    assert len(replicas) == 3 * len(rows)
    assert np.array_equal(replicas.labels, labels[np.repeat(rows, 3)])  # same as the source
    assert np.array_equal(replicas.origin, np.repeat(rows, 3))
    assert len(fused) == _read(paths.AUGMENT_METRICS)["smb_videos"] > 0
    taken = labels[fused.sources[..., 0], fused.sources[..., 1]]  # (n, T) source labels
    assert np.array_equal(taken != store.BACKGROUND, fused.labels != store.BACKGROUND)


def test_augment_rejects_a_bad_count(workspace):
    database.main()
    workspace["augment"]["replicas_per_video"] = 0
    with pytest.raises(PipelineError, match="replicas_per_video: expected an integer >= 1"):
        augment.main(workspace)


@pytest.mark.parametrize("kind", ["refined", "dummy", "pseudo"])
def test_refine_writes_labels_and_their_quality(workspace, kind):
    _base_model()
    workspace["refine"]["labels"] = kind
    refine.main(workspace)
    labels = load_slice_labels(paths.REFINED)
    quality = _read(paths.REFINE_METRICS)
    n = len(store.split_order(paths.STORE, "train"))
    assert labels.kind == kind and labels.sets.shape == (n, 4, store.N_CLASSES)
    assert quality["slices"] == n * 4
    if kind == "dummy":  # the video label on every slice misses no event
        assert quality["recall"] == 1.0 and quality["precision"] < 1.0
    if kind == "pseudo":
        assert labels.segments.shape == (n, store.T) and 0 <= quality["segment_accuracy"] <= 1


def test_refine_rejects_a_window_that_breaks_the_rules(workspace):
    _base_model()
    workspace["refine"]["window"] = 5
    with pytest.raises(PipelineError, match=r"refine\.stride"):
        refine.main(workspace)


def test_retrain_trains_on_the_refined_labels(workspace):
    _base_model()
    refine.main(workspace)
    workspace["refine"]["retrain_epochs"] = 1
    retrain.main(workspace)
    metrics = _read(paths.TRAIN_METRICS / "wsel_refined.json")
    assert metrics["labels"] == "refined" and metrics["best_epoch"] == 1
    saved = torch.load(paths.checkpoint("wsel_refined"), weights_only=True)
    assert saved["task"] == "wsel_refined"


def test_retrain_refuses_labels_of_other_videos(workspace):
    _base_model()
    refine.main(workspace)
    order = store.split_order(paths.STORE, "train")
    store.write_array(paths.STORE / store.order_file("train"), store.ORDER_KEY, order[::-1])
    with pytest.raises(PipelineError, match="other training videos"):
        retrain.main(workspace)


def test_wsel_step_one_draws_partners_even_when_background_videos_are_not_trained_on(workspace):
    workspace["train"]["background_videos"] = False
    train.main(workspace, "wsel")
    metrics = _read(paths.TRAIN_METRICS / "wsel.json")
    assert metrics["auxiliary"] and metrics["background_videos"] == 0
    assert metrics["train_videos"] == len(store.split_order(paths.STORE, "train"))


def test_wsel_auxiliary_objective_needs_background_videos(workspace):
    for name in store.NOISY_FILES:
        (paths.STORE / name).unlink()
    with pytest.raises(PipelineError, match="background-only video"):
        train.main(workspace, "wsel")
