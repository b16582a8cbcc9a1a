"""The data, database, augment, refine and retrain stages on a tiny store, outside DVC."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline.augment.compositions import load_compositions
from pipeline.augment.database import load_database
from pipeline.config import paths
from pipeline.data import sources, store
from pipeline.data.pooled import pooled_file
from pipeline.errors import PipelineError
from pipeline.models import build_model
from pipeline.refinement.labels import load_slice_labels
from pipeline.training.checkpoint import save_checkpoint
from stages import augment, database, download, evaluate, pool, refine, retrain, synthesize, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workspace(tiny_store, tmp_path, monkeypatch) -> dict:
    """A working directory with ``data/ave`` (the tiny store), ``data/pooled``, tiny params."""
    shutil.copytree(tiny_store, tmp_path / paths.STORE)
    monkeypatch.chdir(tmp_path)
    pool.main()
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


def _data_params(source: str, synthetic: dict) -> dict:
    keys = {"local_dir": None, "download_dir": None, "sources": {}, "synthetic": synthetic}
    return {"data": {"source": source, **keys}}


def test_synthesize_download_and_pool_link_and_pool_the_store(
    tmp_path, monkeypatch, tiny_store, tiny_store_kwargs
):
    monkeypatch.chdir(tmp_path)
    params = _data_params("synthetic", tiny_store_kwargs)
    synthesize.main(params)
    download.main(params)
    pool.main()
    for path in paths.STORE.iterdir():  # hard links of the generated files
        assert path.stat().st_ino == (paths.SYNTHETIC / path.name).stat().st_ino
        assert path.read_bytes() == (tiny_store / path.name).read_bytes()
    summary = _read(paths.DOWNLOAD_METRICS)
    assert summary["videos"] == {"train": 40, "val": 10, "test": 10}
    pooled = np.load(pooled_file(paths.POOLED, store.VISUAL))
    assert pooled.shape == (60, store.T, 8) and pooled.dtype == np.float32
    # a rerun, here or in another workspace, hashes nothing again: the user cache remembers
    hashed = []
    monkeypatch.setattr(sources, "sha256_file", hashed.append)
    download.main(params)
    assert hashed == []
    assert _read(paths.DOWNLOAD_METRICS) == summary


def test_synthesize_writes_an_empty_directory_for_the_other_sources(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    synthesize.main(_data_params("local", {"n_train": 4}))
    assert paths.SYNTHETIC.is_dir() and not any(paths.SYNTHETIC.iterdir())
    assert [p.name for p in paths.DATA.iterdir()] == ["synthetic"]  # no temporary directory


def test_download_of_the_synthetic_source_needs_the_synthesize_stage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PipelineError, match="data/synthetic: no synthetic store"):
        download.main(_data_params("synthetic", {}))


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


def test_evaluate_writes_cis_predictions_and_c_ave_metrics(workspace):
    workspace["augment"].update({"replicate": False, "smb_per_class": 0})
    workspace["evaluate"].update({"device": "cpu", "bootstrap": 50, "timeline_videos": 2})
    train.main(workspace, "sel")
    labels = store.read_array(paths.STORE / store.LABELS)  # (n, T, 29)
    right = labels.copy()
    right[:, :, :] = 0
    right[:, :, store.BACKGROUND] = 1  # the corrected labels: all background
    store.write_array(paths.STORE / store.RIGHT_LABELS, store.FEATURE_KEY, right)
    evaluate.main(workspace, "sel")
    results = _read(paths.EVALUATE_METRICS / "sel.json")
    model = results["model"]
    assert model["accuracy_ci_low"] <= model["accuracy"] <= model["accuracy_ci_high"]
    saved = _read(paths.PREDICTIONS / "sel.json")
    rows = store.split_order(paths.STORE, "test")
    assert saved["rows"] == rows.tolist()
    assert saved["labels"] == store.segment_labels(paths.STORE)[rows].tolist()
    predicted = np.array(saved["model"])  # (n, T)
    assert results["c_ave"]["model"]["accuracy"] == pytest.approx(
        np.mean(predicted == store.BACKGROUND)
    )
    assert results["c_ave"]["gt_repeat"]["non_ave_recall"] == 1.0  # repeats "background"
    assert np.all(np.array(saved["right_labels"]) == store.BACKGROUND)
    details = _read(paths.REPORTS / "sel_details.json")
    assert {"model", "c_ave_model"} <= set(details)
    assert "confusion_matrix" not in results["model"]


def test_database_metrics_keep_totals_and_the_report_keeps_per_class_counts(workspace):
    database.main()
    metrics, report = _read(paths.DATABASE_METRICS), _read(paths.DATABASE_COUNTS)
    assert not any("/class_" in key for key in metrics["subevents"])
    assert any("/class_" in key for key in report["subevents"])
    assert metrics["states"] == {k: v for k, v in report["states"].items() if "/class_" not in k}
